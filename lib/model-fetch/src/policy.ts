// Where a model may be downloaded from: the host allow-list the cluster admin
// sets (MODEL_ALLOWED_HOSTS) and whether plain http is allowed (MODEL_LOCAL_MODE,
// for the local Azurite only). The operator and the scorer enforce the same policy
// before any request, so a credential is only ever sent to an allowed host.

/** Azure Blob Storage: every storage account's blob endpoint. */
export const DEFAULT_ALLOWED_HOSTS = '*.blob.core.windows.net';

export interface HostPattern {
  /** `*.suffix` matches exactly one more DNS label in front of suffix; otherwise the exact host. */
  readonly wildcard: boolean;
  /** Lower-case host without a trailing dot; IPv6 in brackets as URL.hostname gives it. */
  readonly host: string;
  /** Only this port, when the entry names one. */
  readonly port: number | undefined;
  /** The entry as written, for messages. */
  readonly text: string;
}

export interface FetchPolicy {
  readonly allowedHosts: readonly HostPattern[];
  /** Plain http:// allowed (local Azurite). Never on a shared cluster. */
  readonly localMode: boolean;
}

export class PolicyConfigError extends Error {
  override name = 'PolicyConfigError';
}

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const DNS_NAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/**
 * Parses a comma-separated allow-list such as `*.blob.core.windows.net,10.250.0.1:10000`.
 * `variable` names the setting in error messages.
 */
export function parseAllowedHosts(raw: string, variable = 'MODEL_ALLOWED_HOSTS'): HostPattern[] {
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) {
    throw new PolicyConfigError(
      `${variable} is empty; list the hosts models may be downloaded from, e.g. ${DEFAULT_ALLOWED_HOSTS}`,
    );
  }
  return entries.map((text) => parseEntry(text, variable));
}

function parseEntry(text: string, variable: string): HostPattern {
  const bad = (why: string) =>
    new PolicyConfigError(
      `${variable} entry ${JSON.stringify(text)} ${why}; write a host name, *.domain (one label) or an IP address, with an optional :port`,
    );
  if (text === '*' || text === '*.*') throw bad('would allow every host');
  let rest = text.toLowerCase();
  let port: number | undefined;
  const portMatch = /^(.*?):(\d{1,5})$/.exec(rest);
  if (portMatch && !rest.endsWith(']') && (rest.startsWith('[') || !portMatch[1]!.includes(':'))) {
    rest = portMatch[1]!;
    port = Number(portMatch[2]);
    if (port < 1 || port > 65535) throw bad('has a port outside 1-65535');
  }
  const wildcard = rest.startsWith('*.');
  const host = (wildcard ? rest.slice(2) : rest).replace(/\.$/, '');
  if (IPV6.test(host)) {
    if (wildcard) throw bad('puts a wildcard in front of an IP address');
    return { wildcard, host, port, text };
  }
  if (!DNS_NAME.test(host)) throw bad('is not a host name');
  // "*.com" or "*" would allow hosts anyone can register.
  if (wildcard && host.split('.').length < 2) throw bad('has a wildcard over a top-level domain');
  return { wildcard, host, port, text };
}

/** URL.port is '' for the scheme's default port. */
function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'http:' ? 80 : 443;
}

export function hostAllowed(url: URL, allowed: readonly HostPattern[]): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const port = portOf(url);
  return allowed.some((p) => {
    if (p.port !== undefined && p.port !== port) return false;
    if (!p.wildcard) return host === p.host;
    if (!host.endsWith(`.${p.host}`)) return false;
    const label = host.slice(0, host.length - p.host.length - 1);
    return label !== '' && !label.includes('.');
  });
}

/** The URI as it may appear in logs, status and errors: no query string, no user information. */
export function describeUri(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export function describePolicy(policy: FetchPolicy): string {
  return policy.allowedHosts.map((p) => p.text).join(',');
}
