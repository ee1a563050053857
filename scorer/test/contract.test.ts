// The model contract is read from the model itself; a model that does not follow
// docs/model-format.md, or is not the one configured, is refused with every reason.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  buildContract,
  ContractError,
  outputValue,
  outputValues,
  type GraphSignature,
} from '../src/model-contract';
import { loadModelRuntime } from '../src/model-runtime';
import { readMetadataProps } from '../src/onnx-metadata';
import { fixtureModel, fnolModel } from './support';

const graph: GraphSignature = {
  inputs: [
    { name: 'a', type: 'float32', shape: ['N', 1] },
    { name: 'b', type: 'string', shape: ['N', 1] },
  ],
  outputs: [{ name: 'y', type: 'float32', shape: ['N', 1] }],
};

function props(overrides: Record<string, string | undefined>): Map<string, string> {
  const base: Record<string, string | undefined> = {
    name: 'm',
    version: '1.0.0',
    feature_order: '["a", "b"]',
    features:
      '[{"name": "a", "type": "number", "nullable": true}, {"name": "b", "type": "string", "nullable": false}]',
    primary_output: 'y',
    outputs: '{"y": "the answer"}',
    self_test:
      '{"records": [{"a": 1, "b": "x"}], "expected": {"y": [2]}, "tolerance": {"relative": 0.001, "absolute": 0}}',
    ...overrides,
  };
  return new Map(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
}

const none = { name: undefined, version: undefined };

describe('scorer model contract', () => {
  it('reads features in positional order with their types', () => {
    const contract = buildContract(props({}), graph, none);
    assert.deepEqual(
      contract.features.map((f) => `${f.name}:${f.type}:${f.nullable}`),
      ['a:number:true', 'b:string:false'],
    );
    assert.equal(contract.primaryOutput, 'y');
    assert.equal(contract.outputs[0]?.description, 'the answer');
  });

  it('reads the values per record of each output from its shape, and the class labels', () => {
    const wide: GraphSignature = {
      inputs: graph.inputs,
      outputs: [
        { name: 'y', type: 'float32', shape: ['N', 1] },
        { name: 'p', type: 'float32', shape: ['N', 3] },
        { name: 'q', type: 'float32', shape: ['N'] },
      ],
    };
    const contract = buildContract(props({ class_names: '["lo", "mid", "hi"]' }), wide, none);
    assert.deepEqual(
      contract.outputs.map((o) => [o.name, o.width, o.labels]),
      [
        ['y', 1, undefined],
        ['p', 3, ['lo', 'mid', 'hi']],
        ['q', 1, undefined],
      ],
    );
    const p = contract.outputs[1]!;
    const column = Float32Array.from([0.25, 0.5, 0.25, 1, 0, 0]);
    assert.deepEqual(outputValues(p, column), [
      [0.25, 0.5, 0.25],
      [1, 0, 0],
    ]);
    assert.deepEqual(outputValue(p, column, 1), [1, 0, 0]);
    // labels that do not fit the width are not used
    const unlabelled = buildContract(props({ class_names: '["lo", "hi"]' }), wide, none);
    assert.equal(unlabelled.outputs[1]?.labels, undefined);
  });

  it('refuses outputs of rank 3 and a self_test that expects a K-valued output', () => {
    const bad: GraphSignature = {
      inputs: graph.inputs,
      outputs: [
        { name: 'y', type: 'float32', shape: ['N', 2] },
        { name: 'z', type: 'float32', shape: ['N', 2, 2] },
      ],
    };
    assert.throws(
      () => buildContract(props({}), bad, none),
      (err: unknown) =>
        err instanceof ContractError &&
        err.message.includes('graph output "z" has shape [N, 2, 2]; expected [N], [N, 1] or [N, K]') &&
        err.message.includes('expects output "y", which has 2 values per record'),
    );
  });

  it('lists every way a model breaks the contract', () => {
    assert.throws(
      () =>
        buildContract(
          props({
            feature_order: '["b", "a", "c"]',
            primary_output: 'z',
            self_test: undefined,
            features:
              '[{"name": "a", "type": "string"}, {"name": "b", "type": "string"}, {"name": "c", "type": "number"}]',
          }),
          graph,
          { name: 'other', version: '2.0.0' },
        ),
      (error: Error) => {
        assert.ok(error instanceof ContractError);
        for (const expected of [
          /the model is named "m" but MODEL_NAME is "other"/,
          /the model has version "1.0.0" but MODEL_VERSION is "2.0.0"/,
          /feature "a" is a string but graph input has type float32/,
          /feature "c" is in feature_order but the graph has no input of that name/,
          /primary_output "z" is not a graph output \(y\)/,
          /metadata_props has no "self_test"/,
        ]) {
          assert.match(error.message, expected);
        }
        return true;
      },
    );
  });

  it('refuses a real model when MODEL_NAME or MODEL_VERSION do not match', async () => {
    await assert.rejects(
      loadModelRuntime(readFileSync(fnolModel()), { name: 'fnol', version: '0.9.0' }, { intraOpThreads: 1 }),
      /but MODEL_VERSION is "0.9.0"; point MODEL_URI at the right file/,
    );
  });

  it('reads metadata_props from the ONNX bytes', () => {
    const metadata = readMetadataProps(readFileSync(fixtureModel('generic')));
    assert.equal(metadata.get('name'), 'rectangles');
    assert.deepEqual(JSON.parse(metadata.get('feature_order') ?? ''), ['length', 'colour', 'width']);
  });
});
