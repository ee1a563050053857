// Publishes a compiled model version to the model store:
//   <container>/fnol/<version>/fnol-<version>.onnx and fnol-<version>.model-card.json
// Usage: npm run model:publish -- --version 1.0.0 [--container models]
//        [--model-dir build/model] [--json] [--out DIR]
// Prints the model's URI and sha256 (JSON with --json); --out also writes
// publish.json and the model card into DIR (the pipeline's artifact).
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  connectFromEnv,
  describeStoreError,
  ensureContainer,
  putImmutable,
  sha256,
  type PutOutcome,
} from './model-store';

export interface PublishResult {
  name: string;
  version: string;
  uri: string;
  sha256: string;
  modelCard: { uri: string; sha256: string };
  status: 'published' | 'unchanged';
}

const VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
const NAME = 'fnol';

export interface PublishOptions {
  version: string;
  modelDir: string;
  container: string;
  log: (line: string) => void;
  env?: Record<string, string | undefined>;
}

export async function publishModel(opts: PublishOptions): Promise<PublishResult> {
  const { version, modelDir, container: containerName, log } = opts;
  if (!VERSION.test(version))
    throw new Error(`--version "${version}" is not a semantic version such as 1.0.0`);
  const modelFile = path.join(modelDir, `${NAME}-${version}.onnx`);
  const cardFile = path.join(modelDir, `${NAME}-${version}.model-card.json`);
  for (const f of [modelFile, cardFile]) {
    if (!existsSync(f)) throw new Error(`${f} does not exist; compile the model first (npm run model:build)`);
  }
  const model = readFileSync(modelFile);
  const cardBytes = readFileSync(cardFile);
  const digest = sha256(model);
  let card: { name?: unknown; version?: unknown; sha256?: unknown };
  try {
    card = JSON.parse(cardBytes.toString('utf8')) as typeof card;
  } catch {
    throw new Error(`${cardFile} is not valid JSON`);
  }
  if (card.version !== version) {
    throw new Error(
      `${cardFile} describes version ${String(card.version)}, not ${version}; rebuild the model`,
    );
  }
  if (card.sha256 !== undefined && card.sha256 !== digest) {
    throw new Error(
      `${modelFile} has sha256 ${digest} but its model card says ${String(card.sha256)}; rebuild the model`,
    );
  }

  const { client, accountUrl } = connectFromEnv(opts.env);
  const container = client.getContainerClient(containerName);
  log(`model store ${accountUrl}, container ${containerName}`);
  await ensureContainer(container);

  const prefix = `${NAME}/${version}`;
  const modelBlob = `${prefix}/${path.basename(modelFile)}`;
  const cardBlob = `${prefix}/${path.basename(cardFile)}`;
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
  log(`uploading ${modelBlob} (${mb(model.length)}, sha256 ${digest})`);
  let lastShown = 0;
  const modelOutcome = await putImmutable(
    container,
    modelBlob,
    model,
    'application/octet-stream',
    (loaded) => {
      if (loaded - lastShown >= 4e6 || loaded === model.length) {
        log(`  ${mb(loaded)} / ${mb(model.length)}`);
        lastShown = loaded;
      }
    },
  );
  log(modelOutcome === 'uploaded' ? '  uploaded' : '  already published with identical content: unchanged');

  // The card is written once with the model. A rebuilt card of the same model
  // (new timestamp) does not replace the published one: the model is the identity.
  let cardOutcome: PutOutcome;
  const cardClient = container.getBlockBlobClient(cardBlob);
  if (modelOutcome === 'unchanged' && (await cardClient.exists())) {
    cardOutcome = 'unchanged';
  } else {
    cardOutcome = await putImmutable(container, cardBlob, cardBytes, 'application/json');
  }
  const storedCard = cardOutcome === 'unchanged' ? await cardClient.downloadToBuffer() : cardBytes;

  return {
    name: NAME,
    version,
    uri: `${accountUrl}/${containerName}/${modelBlob}`,
    sha256: digest,
    modelCard: { uri: `${accountUrl}/${containerName}/${cardBlob}`, sha256: sha256(storedCard) },
    status: modelOutcome === 'uploaded' ? 'published' : 'unchanged',
  };
}

const USAGE =
  'usage: npm run model:publish -- --version X.Y.Z [--container models] [--model-dir build/model] [--json] [--out DIR]';

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        version: { type: 'string' },
        container: { type: 'string', default: process.env.FNOL_MODEL_CONTAINER ?? 'models' },
        'model-dir': { type: 'string', default: 'build/model' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.version) {
    console.error(`error: --version is required\n${USAGE}`);
    return 2;
  }
  // With --json, stdout carries only the JSON document; progress goes to stderr.
  const log = (line: string): void => {
    if (values.json) console.error(line);
    else console.log(line);
  };
  try {
    const result = await publishModel({
      version: values.version,
      modelDir: values['model-dir'],
      container: values.container,
      log,
    });
    if (values.out) {
      mkdirSync(values.out, { recursive: true });
      writeFileSync(path.join(values.out, 'publish.json'), `${JSON.stringify(result, null, 2)}\n`);
      copyFileSync(
        path.join(values['model-dir'], `${NAME}-${values.version}.model-card.json`),
        path.join(values.out, `${NAME}-${values.version}.model-card.json`),
      );
      log(`wrote ${path.join(values.out, 'publish.json')}`);
    }
    if (values.json) {
      console.log(JSON.stringify(result));
    } else {
      console.log(`${result.status} ${result.name} ${result.version}`);
      console.log(`  uri     ${result.uri}`);
      console.log(`  sha256  ${result.sha256}`);
    }
    return 0;
  } catch (err) {
    console.error(`error: ${describeStoreError(err)}`);
    return 1;
  }
}

if (require.main === module) {
  // main reports its own errors; anything else still ends the process with a message.
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
