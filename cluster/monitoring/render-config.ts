// Writes the local Prometheus' configuration to stdout (cluster/monitoring/up.sh):
// the scrape jobs of manifests/monitoring/scrape-configs.yaml and the rule files
// of manifests/monitoring/rules/. Debian's Prometheus has no Kubernetes service
// discovery: each job's kubernetes_sd_configs (role pod) becomes a file_sd
// entry reading the targets cluster/monitoring/pod-discovery.ts writes, with
// the same __meta_kubernetes_* labels, so the jobs' relabeling is unchanged.
//
//   tsx cluster/monitoring/render-config.ts --targets FILE
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { MONITORING_DIR, ruleFiles } from '../../scripts/monitoring-rules';

interface ScrapeConfig {
  job_name: string;
  kubernetes_sd_configs?: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

export interface LocalSettings {
  /** The file_sd file of pod targets (pod-discovery.ts). */
  targetsFile: string;
}

/** The configuration as YAML text. */
export function renderConfig(s: LocalSettings): string {
  const doc = parse(readFileSync(path.join(MONITORING_DIR, 'scrape-configs.yaml'), 'utf8')) as {
    scrape_configs?: ScrapeConfig[];
  };
  if (!doc?.scrape_configs?.length)
    throw new Error('manifests/monitoring/scrape-configs.yaml has no scrape_configs');
  const scrapeConfigs = doc.scrape_configs.map(({ kubernetes_sd_configs: sd, ...job }) => {
    if (!sd) return job;
    if (sd.some((c) => c.role !== 'pod')) {
      throw new Error(`job ${job.job_name}: only role pod discovery is available locally (pod-discovery.ts)`);
    }
    return { ...job, file_sd_configs: [{ files: [s.targetsFile], refresh_interval: '30s' }] };
  });
  const config = {
    global: { scrape_interval: '15s', evaluation_interval: '15s' },
    rule_files: ruleFiles(),
    scrape_configs: scrapeConfigs,
  };
  return `# Written by cluster/monitoring/up.sh; changes are overwritten.\n${stringify(config, { lineWidth: 0 })}`;
}

if (require.main === module) {
  const { values } = parseArgs({ options: { targets: { type: 'string' } } });
  if (!values.targets) {
    console.error('usage: render-config.ts --targets FILE');
    process.exit(2);
  }
  process.stdout.write(renderConfig({ targetsFile: values.targets }));
}
