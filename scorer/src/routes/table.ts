// The scorer's route table: every endpoint with its method, path patterns, the
// label its metrics and logs carry, and its handler. The instrumentation takes
// its labels from here, so a route added to the table is measured with no
// other change.

import type { IncomingMessage, ServerResponse } from 'node:http';

export type Method = 'GET' | 'POST';

/** A request as a handler sees it: node's, with the path parameters when express routed it. */
export interface RouteRequest extends IncomingMessage {
  params?: Record<string, string>;
}

export type Handler = (req: RouteRequest, res: ServerResponse) => void | Promise<void>;

export interface Route {
  readonly method: Method;
  /** Path patterns the route answers: literal segments and `:param` segments (one non-empty segment each). */
  readonly paths: readonly string[];
  /** The `route` label of the request metrics and the access log. */
  readonly label: string;
  /** Needs an API key when keys are configured (checked before the handler runs). */
  readonly auth?: boolean;
  /** A readiness probe: its 503 while loading or draining is its answer, neither counted nor logged as a failure. */
  readonly probe?: boolean;
  /**
   * Served on plain node:http objects before express sees the request (the
   * hot path): only its exact path, with or without a query string, and no
   * path parameters.
   */
  readonly direct?: boolean;
  readonly handler: Handler;
}

/** The label of a request whose path matches no route. */
export const UNKNOWN_ROUTE = 'other';

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
/** Characters a literal segment may hold: none that express's path syntax gives a meaning to. */
const LITERAL = /^[A-Za-z0-9._~-]+$/;

interface Pattern {
  readonly route: Route;
  /** Literal segments, undefined where a parameter stands. */
  readonly segments: readonly (string | undefined)[];
}

/**
 * The routes of one scorer, checked when built: well-formed patterns, no
 * method and path served twice, and no route labelled as the unknown one.
 */
export class RouteTable {
  /** Routes of each literal path (no parameter), in table order. */
  private readonly literal = new Map<string, Route[]>();
  /** Patterns with parameters, by number of segments. */
  private readonly patterns = new Map<number, Pattern[]>();

  constructor(readonly routes: readonly Route[]) {
    const seen = new Set<string>();
    for (const route of routes) {
      if (route.label === UNKNOWN_ROUTE || route.label === '') {
        throw new Error(
          `route ${route.method} ${route.paths.join(', ')}: the label "${route.label}" is reserved`,
        );
      }
      if (route.paths.length === 0) throw new Error(`route ${route.label} has no path`);
      for (const path of route.paths) {
        const key = `${route.method} ${path}`;
        if (seen.has(key)) throw new Error(`two routes for ${key}`);
        seen.add(key);
        const parts = path.split('/').slice(1);
        if (!path.startsWith('/') || parts.some((p) => !PARAM.test(p) && !LITERAL.test(p))) {
          throw new Error(
            `route ${route.label}: bad path pattern "${path}" (literal segments and :param segments)`,
          );
        }
        const segments = parts.map((p) => (p.startsWith(':') ? undefined : p));
        if (segments.every((s) => s !== undefined)) {
          const list = this.literal.get(path) ?? [];
          list.push(route);
          this.literal.set(path, list);
        } else {
          if (route.direct) throw new Error(`route ${route.label}: a direct route has no path parameters`);
          const list = this.patterns.get(segments.length) ?? [];
          list.push({ route, segments });
          this.patterns.set(segments.length, list);
        }
      }
    }
  }

  /**
   * The route a request's path (without its query string) belongs to: the
   * route of its method if there is one, else the first route on that path
   * (a known path asked with another method keeps its label). Matching is
   * exact: case and a trailing slash count.
   */
  find(method: string | undefined, path: string): Route | undefined {
    const routes = this.literal.get(path) ?? this.matching(path);
    if (routes === undefined) return undefined;
    for (const route of routes) if (route.method === method) return route;
    return routes[0];
  }

  /** The metrics label of a path: its route's label, or UNKNOWN_ROUTE. */
  label(method: string | undefined, path: string): string {
    return this.find(method, path)?.label ?? UNKNOWN_ROUTE;
  }

  private matching(path: string): Route[] | undefined {
    const parts = path.split('/');
    const candidates = this.patterns.get(parts.length - 1);
    if (candidates === undefined || parts[0] !== '') return undefined;
    let found: Route[] | undefined;
    for (const { route, segments } of candidates) {
      let ok = true;
      for (let i = 0; i < segments.length && ok; i++) {
        const part = parts[i + 1] as string;
        const literal = segments[i];
        ok = literal === undefined ? part !== '' : part === literal;
      }
      if (ok) (found ??= []).push(route);
    }
    return found;
  }
}
