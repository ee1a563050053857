/**
 * The FnolModel API (serving.fnol.io/v1alpha1): names, types generated from
 * crds/fnolmodel.yaml, condition reasons, API paths and the "same model" rule.
 * The operator, fnolctl, tests and benchmarks import it; nothing redeclares it.
 */
export * from './group';
export * from './types';
export * from './paths';
export * from './model';
