"""Compiles CatBoost models into ONNX operators that reproduce their predictions.

The layout of the graph (see docs/adr/0001-compile-catboost-to-onnx.md):

1. Each categorical input goes through a LabelEncoder to a small index: the
   position of the (cleaned) value in the training vocabulary, or one extra index
   for every value never seen in training.
2. Numeric inputs are concatenated; every float border a model uses becomes one
   Greater comparison (NaN compares false, or true where the model says AsTrue).
3. A CTR depends only on the indices of its categorical features and the bits of
   its float borders, so each combination gets a mixed-radix key and one
   LabelEncoder maps every possible key to the CTR value CatBoost computes for it
   (found in its statistics table, or the prior when not found). The values are
   computed here in float32 exactly as CatBoost computes them.
4. Symmetric trees (oblivious_raw; the FNOL recipe and every symmetric generic
   model): all distinct split bits of a model are computed once; one MatMulInteger
   with powers of two gives each tree's leaf index, a GatherElements picks the leaf
   values (float64) and a ReduceSum adds them, as CatBoost does in double precision.
   Depthwise and Lossguide trees (levelwise_raw): the same split bits, and a walk down the
   levels of every tree at once (the split of the current node, then its bit); one float64
   TreeEnsemble (ensemble_raw) only when padding the trees to full depth would be too large.
   Why: docs/adr/0007-tree-ensemble-graph.md.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .catboost_model import CatBoostModel, CompileError, Ctr, Node, Split, Tree
from .cityhash import MASK, cat_feature_hash, combine_hash

OPSET = 18
ML_OPSET = 3
# TreeEnsemble (ai.onnx.ml opset 5) node modes the compiler uses
BRANCH_GT = 3
BRANCH_EQ = 4


# The comparison of a float or CTR value with a split border (CatBoost: value > border, float32).
SPLIT_COMPARISON = "Greater"


def oblivious_leaf(index: int, depth: int) -> int:
    """Position of a symmetric tree's leaf in CatBoost's leaf array: bit d of the index is split d."""
    return index


def depth_weights(depth: int) -> np.ndarray:
    """[1, depth]: the weight of split d's bit in a symmetric tree's leaf index (2^d)."""
    return (2 ** np.arange(depth, dtype=np.int64)).reshape(1, depth)


# The level walk pads every tree to the deepest one: beyond this many padded leaves (x dimension),
# 32 MB of float64, a model keeps the TreeEnsemble layout.
LEVEL_WALK_MAX_LEAVES = 4_000_000


def level_walk_fits(model: CatBoostModel) -> bool:
    """Whether the level walk's padded tables of a non-symmetric model stay within LEVEL_WALK_MAX_LEAVES."""
    depth = max([1] + [tree_depth(root) for root in model.node_trees])
    return (len(model.node_trees) << depth) * model.dimension <= LEVEL_WALK_MAX_LEAVES


def level_leaf(index: int, depth: int, full_depth: int) -> int:
    """Where the level walk ends for a leaf at `depth` with index `index` within its level: the levels
    below it use the always-false row, so the walk goes left (bit 0) to the last level."""
    return index << (full_depth - depth)


def tree_depth(node: Node) -> int:
    """Levels of splits on the longest path of a non-symmetric tree (0 for a single leaf)."""
    if node.split is None or node.left is None or node.right is None:
        return 0
    return 1 + max(tree_depth(node.left), tree_depth(node.right))


def leaf_values(node: Node) -> list[float]:
    """The values of a leaf of a non-symmetric tree."""
    if node.values is None:
        raise CompileError("a node of a non-symmetric tree has neither a split with two children nor leaf values")
    return node.values


@dataclass
class CategoricalInput:
    name: str
    vocabulary: list[str]  # values seen in training, after cleaning
    aliases: dict[str, str]  # raw value -> cleaned value (training-time cleaning)


class GraphBuilder:
    # The split-bit layout before MatMulInteger and GatherElements (float32 MatMul, LabelEncoder
    # or Gather lookup), kept only so that the benchmark can measure both in the same run.
    previous_leaf_lookup: bool = False

    def __init__(
        self,
        numeric: list[str],
        categorical: list[CategoricalInput],
        order: list[str],
        opset: int = OPSET,
        ml_opset: int = ML_OPSET,
    ):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.order = order
        self.numeric = numeric
        self.categorical = {c.name: c for c in categorical}
        self.opset, self.ml_opset = opset, ml_opset
        self._n = 0
        self._numeric_matrix()
        self._categorical_indices()

    # -- small helpers -------------------------------------------------------
    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str | None = None, domain: str = "", **attrs: Any) -> str:
        out = self._name(prefix or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    # -- shared front end ----------------------------------------------------
    def _numeric_matrix(self) -> None:
        self.numeric_col = {n: i for i, n in enumerate(self.numeric)}
        self.x_rows = self.node("Concat", list(self.numeric), "numeric", axis=1) if self.numeric else ""  # [N, F]
        # Features as rows ([features, N]): every selection below copies whole rows.
        self.x = self.node("Transpose", [self.x_rows], "numeric_t") if self.numeric else ""

    def _categorical_indices(self) -> None:
        self.cat_index: dict[str, str] = {}
        for c in self.categorical.values():
            keys = list(c.vocabulary) + [raw for raw in c.aliases if raw not in c.vocabulary]
            values = [c.vocabulary.index(c.aliases.get(k, k)) for k in keys]
            idx = self.node(
                "LabelEncoder",
                [c.name],
                f"{c.name}_index",
                domain="ai.onnx.ml",
                keys_strings=keys,
                values_int64s=values,
                default_int64=len(c.vocabulary),
            )
            self.cat_index[c.name] = idx

    def float_bits(self, columns: list[int], borders: list[float], nan_true: list[bool], prefix: str) -> str:
        """[len(columns), N] bool: x[column] > border."""
        rows = self.const(f"{prefix}_rows", np.array(columns, dtype=np.int64))
        gathered = self.node("Gather", [self.x, rows], f"{prefix}_x", axis=0)
        thr = self.const(f"{prefix}_borders", np.array(borders, dtype=np.float32).reshape(-1, 1))
        bits = self.node(SPLIT_COMPARISON, [gathered, thr], f"{prefix}_gt")
        if any(nan_true):
            mask = self.const(f"{prefix}_nan_true", np.array(nan_true, dtype=bool).reshape(-1, 1))
            nan = self.node("And", [self.node("IsNaN", [gathered]), mask], f"{prefix}_nan")
            bits = self.node("Or", [bits, nan], f"{prefix}_bits")
        return bits

    # -- one CatBoost model --------------------------------------------------
    def model_raw(self, model: CatBoostModel, prefix: str) -> str:
        """Adds the nodes computing the model's raw sum (float64, [N, 1]); returns its name."""
        if not model.symmetric or model.dimension != 1 or any(s.kind == "onehot" for s in model.splits):
            raise CompileError(f"{model.path}: the bit-matrix layout takes one-dimensional symmetric trees only")
        return self.oblivious_raw(model, prefix)

    def oblivious_raw(self, model: CatBoostModel, prefix: str) -> str:
        """Adds the nodes computing the raw values ([N, dimension], float64) of a model of symmetric trees.

        Every distinct split of the model is evaluated once for all trees: float features and
        CTR values against their borders (float32 `>`, NaN true only where the model says
        AsTrue), one-hot splits as an index equality. Each tree's split bits (uint8) are
        gathered ([depth, trees, N]) and weighted by 2^d in one MatMulInteger, which gives every
        tree's leaf index; one GatherElements from a [trees, 2^depth] float64 leaf table (a Gather
        from a flat [leaves, K] table for multiclass models) and one ReduceSum over the trees
        (float64) give the raw sum, as CatBoost adds its leaves in double precision.
        """
        self._check_inputs(model)
        if not model.symmetric:
            raise CompileError(f"{model.path}: the split-bit layout takes symmetric trees only")
        K = model.dimension
        splits, bits = self._split_bits(
            model, {(s.kind, s.feature, s.border) for t in model.trees for s in t.splits}, prefix
        )
        position = {s: i for i, s in enumerate(splits)}

        trees = model.trees
        depth = max(1, max(len(t.splits) for t in trees))
        if depth > 16:
            raise CompileError(f"{model.path}: trees of depth {depth}; CatBoost trains depth 16 at most")
        split_rows = np.full((depth, len(trees)), len(splits), dtype=np.int64)
        offsets = np.zeros((len(trees), 1), dtype=np.int32)
        table: list[list[float]] = []
        for t, tree in enumerate(trees):
            d_t = len(tree.splits)
            for d, s in enumerate(tree.splits):
                split_rows[d, t] = position[(s.kind, s.feature, s.border)]
            offsets[t, 0] = len(table)
            for i in range(1 << d_t):
                li = oblivious_leaf(i, d_t)
                table.append(tree.leaf_values[li * K : (li + 1) * K])
        if len(table) >= 2**31:
            raise CompileError(f"{model.path}: {len(table)} leaves; too many to index")
        table_values = np.array(table, dtype=np.float64).reshape(-1, K)
        if self.previous_leaf_lookup:
            raw = self._previous_leaf_lookup(bits, split_rows, offsets, table_values, prefix)
        elif K == 1 and len(trees) << depth <= 2 * len(table):
            leaf = self._leaf_indices(bits, split_rows, prefix)  # [trees, N] int32, below 2^depth
            # One value per leaf and trees of (about) one depth: a [trees, 2^depth] float64 table and
            # one GatherElements, which looks leaves up 2-3x as fast as Gather or LabelEncoder.
            square = np.zeros((len(trees), 1 << depth), dtype=np.float64)
            for t, tree in enumerate(trees):
                width = 1 << len(tree.splits)
                square[t, :width] = table_values[offsets[t, 0] : offsets[t, 0] + width, 0]
            values = self.node(
                "GatherElements", [self.const(f"{prefix}_leaf_values", square), leaf], f"{prefix}_vals", axis=1
            )  # [trees, N]
            raw = self.node(
                "ReduceSum",
                [values, self.const(f"{prefix}_tree_axis", np.array([0], dtype=np.int64))],
                f"{prefix}_sum",
                keepdims=0,
            )  # [N] float64
            raw = self.node(
                "Unsqueeze", [raw, self.const(f"{prefix}_column", np.array([1], dtype=np.int64))], f"{prefix}_sum_n1"
            )  # [N, 1]
        else:
            leaf = self._leaf_indices(bits, split_rows, prefix)
            leaf = self.node("Add", [leaf, self.const(f"{prefix}_tree_offsets", offsets)], f"{prefix}_leaf")
            values = self.node(
                "Gather", [self.const(f"{prefix}_leaf_values", table_values), leaf], f"{prefix}_vals", axis=0
            )  # [trees, N, K]
            raw = self.node(
                "ReduceSum",
                [values, self.const(f"{prefix}_tree_axis", np.array([0], dtype=np.int64))],
                f"{prefix}_sum",
                keepdims=0,
            )  # [N, K] float64
        return self._scale_and_bias(model, raw, prefix)

    def _split_bits(
        self, model: CatBoostModel, distinct: set[tuple[str, int, float]], prefix: str
    ) -> tuple[list[tuple[str, int, float]], str]:
        """Every distinct split's bit, once for all trees: ([splits in row order], [splits + 1, N] bool).

        Float features and CTR values against their borders (float32 `>`, NaN true only where the
        model says AsTrue), one-hot splits as an index equality; the last row is always false (it
        pads trees shallower than the deepest one and the levels below a leaf).
        """
        # Distinct splits in the order of the bit rows below: float, CTR, one-hot.
        kinds = {"float": 0, "ctr": 1, "onehot": 2}
        splits = sorted(distinct, key=lambda s: (kinds[s[0]], s))
        parts = []
        float_splits = [(f, b) for kind, f, b in splits if kind == "float"]
        if float_splits:
            ff = model.float_features
            parts.append(
                self.float_bits(
                    [self.numeric_col[ff[f].name] for f, _ in float_splits],
                    [b for _, b in float_splits],
                    [ff[f].nan_as_true for f, _ in float_splits],
                    f"{prefix}_split",
                )
            )
        ctr_splits = [(c, b) for kind, c, b in splits if kind == "ctr"]
        if ctr_splits:
            ctr_values = self._ctr_values(model, prefix)  # [ctrs, N] float32
            rows = self.const(f"{prefix}_ctr_rows", np.array([c for c, _ in ctr_splits], dtype=np.int64))
            gathered = self.node("Gather", [ctr_values, rows], f"{prefix}_ctr_x", axis=0)
            thr = np.array([b for _, b in ctr_splits], dtype=np.float32).reshape(-1, 1)
            parts.append(
                self.node(SPLIT_COMPARISON, [gathered, self.const(f"{prefix}_ctr_borders", thr)], f"{prefix}_ctr_gt")
            )
        onehot_splits = [(c, b) for kind, c, b in splits if kind == "onehot"]
        if onehot_splits:
            feats = sorted({c for c, _ in onehot_splits})
            names = [model.cat_features[c].name for c in feats]
            idx = (
                self.node("Concat", [self.cat_index[n] for n in names], f"{prefix}_onehot_idx", axis=1)
                if len(names) > 1
                else self.cat_index[names[0]]
            )
            idx_t = self.node("Transpose", [idx], f"{prefix}_onehot_idx_t")  # [features, N]
            rows = self.const(f"{prefix}_onehot_rows", np.array([feats.index(c) for c, _ in onehot_splits], np.int64))
            gathered = self.node("Gather", [idx_t, rows], f"{prefix}_onehot_x", axis=0)
            wanted = []
            for c, value in onehot_splits:
                hashes = [cat_feature_hash(v) for v in self.categorical[model.cat_features[c].name].vocabulary]
                wanted.append(hashes.index(int(value)) if int(value) in hashes else -1)  # -1: never matches
            k = self.const(f"{prefix}_onehot_k", np.array(wanted, dtype=np.int64).reshape(-1, 1))
            parts.append(self.node("Equal", [gathered, k], f"{prefix}_onehot_eq"))
        # One always-false row pads trees shallower than the deepest one (and trees without splits).
        n = self.node("Shape", [self.order[0]], f"{prefix}_n", start=0, end=1)
        pad_shape = self.node(
            "Concat", [self.const(f"{prefix}_one", np.array([1], dtype=np.int64)), n], f"{prefix}_pad_shape", axis=0
        )
        parts.append(
            self.node(
                "Expand", [self.const(f"{prefix}_pad", np.zeros((1, 1), dtype=bool)), pad_shape], f"{prefix}_padding"
            )
        )
        bits = self.node("Concat", parts, f"{prefix}_bits", axis=0) if len(parts) > 1 else parts[0]
        return splits, bits

    def _previous_leaf_lookup(
        self, bits: str, split_rows: np.ndarray, offsets: np.ndarray, table: np.ndarray, prefix: str
    ) -> str:
        """The raw sum as the graph computed it before _leaf_indices (benchmark comparison only)."""
        depth, trees = split_rows.shape
        bits_f = self.node("Cast", [bits], f"{prefix}_bits_f", to=TensorProto.FLOAT)
        tree_bits = self.node("Gather", [bits_f, self.const(f"{prefix}_split_rows", split_rows)], axis=0)
        flat = self.node("Reshape", [tree_bits, self.const(f"{prefix}_flat", np.array([depth, -1], np.int64))])
        weights = np.asarray(depth_weights(depth), dtype=np.float32).reshape(1, depth)
        leaf_f = self.node("MatMul", [self.const(f"{prefix}_powers", weights), flat])
        leaf_f = self.node("Reshape", [leaf_f, self.const(f"{prefix}_per_tree", np.array([trees, -1], np.int64))])
        axis0 = self.const(f"{prefix}_tree_axis", np.array([0], dtype=np.int64))
        if table.shape[1] == 1 and self.ml_opset >= 4:
            leaf = self.node("Cast", [leaf_f], to=TensorProto.INT64)
            leaf = self.node("Add", [leaf, self.const(f"{prefix}_tree_offsets", offsets.astype(np.int64))])
            values = self.node(
                "LabelEncoder",
                [leaf],
                domain="ai.onnx.ml",
                keys_tensor=numpy_helper.from_array(np.arange(len(table), dtype=np.int64), "keys"),
                values_tensor=numpy_helper.from_array(table[:, 0].copy(), "values"),
                default_tensor=numpy_helper.from_array(np.array([np.nan]), "default"),
            )
            raw = self.node("ReduceSum", [values, axis0], keepdims=0)
            return self.node("Unsqueeze", [raw, self.const(f"{prefix}_column", np.array([1], dtype=np.int64))])
        leaf = self.node("Cast", [leaf_f], to=TensorProto.INT32)
        leaf = self.node("Add", [leaf, self.const(f"{prefix}_tree_offsets", offsets)])
        values = self.node("Gather", [self.const(f"{prefix}_leaf_values", table), leaf], axis=0)
        return self.node("ReduceSum", [values, axis0], keepdims=0)

    def _leaf_indices(self, bits: str, split_rows: np.ndarray, prefix: str) -> str:
        """[trees, N] int32: each symmetric tree's leaf index, bit d of it the outcome of split d.

        The bits ([splits + 1, N] bool) become uint8 and are gathered per tree ([depth, trees, N],
        a quarter of the bytes of float32); one MatMulInteger (uint8 x uint8 -> int32) by the
        powers of two gives every leaf index exactly. A uint8 weight holds 2^7 at most, so the
        bits of depth 8 to 15 get a second row of weights and their sum is scaled by 256.
        """
        depth, trees = split_rows.shape
        weights = np.asarray(depth_weights(depth)).reshape(-1).astype(np.int64)
        low = np.where(weights < 256, weights, 0)
        high = np.where(weights >= 256, weights // 256, 0)
        rows = [low] if not high.any() else [low, high]
        bits_u8 = self.node("Cast", [bits], f"{prefix}_bits_u8", to=TensorProto.UINT8)  # [splits + 1, N]
        tree_bits = self.node(
            "Gather", [bits_u8, self.const(f"{prefix}_split_rows", split_rows)], f"{prefix}_tree_bits", axis=0
        )  # [depth, trees, N]: each gathered row is one split's bits for all records (one copy)
        flat = self.node(
            "Reshape",
            [tree_bits, self.const(f"{prefix}_flat", np.array([depth, -1], dtype=np.int64))],
            f"{prefix}_flat_bits",
        )
        leaf = self.node(
            "MatMulInteger",
            [self.const(f"{prefix}_powers", np.array(rows, dtype=np.uint8)), flat],
            f"{prefix}_leaf_flat",
        )  # [1 or 2, trees * N] int32
        if len(rows) > 1:
            leaf = self.node(
                "MatMul",
                [self.const(f"{prefix}_bytes", np.array([[1, 256]], dtype=np.int32)), leaf],
                f"{prefix}_leaf16",
            )
        return self.node(
            "Reshape",
            [leaf, self.const(f"{prefix}_per_tree", np.array([trees, -1], dtype=np.int64))],
            f"{prefix}_leaf_local",
        )  # [trees, N]

    def levelwise_raw(self, model: CatBoostModel, prefix: str) -> str:
        """Adds the nodes computing the raw values ([N, dimension], float64) of Depthwise/Lossguide trees.

        Every distinct split's bit is computed once for all trees, as for symmetric trees. Each tree
        is padded to a full tree of the deepest tree's depth D (below a leaf, the always-false row:
        the walk goes left, so the leaf at level d with index j is reached at j * 2^(D - d)). The
        walk keeps each tree's node index within its level ([trees, N] int32): level 0 gathers the
        roots' bits; each further level looks up the split of the current node (GatherElements from
        a [trees, 2^d] table of bit rows), then that split's bit for the record (GatherElements from
        the bits) and sets j = 2j + bit. The leaves (float64) are looked up and summed over the trees
        as for symmetric trees.
        """
        if model.symmetric or not model.node_trees:
            raise CompileError(f"{model.path}: the level walk takes Depthwise and Lossguide trees")
        if not level_walk_fits(model):
            raise CompileError(
                f"{model.path}: the trees padded to full depth would hold more than {LEVEL_WALK_MAX_LEAVES} "
                "leaves x classes; compile this model as one TreeEnsemble"
            )
        self._check_inputs(model)
        K = model.dimension
        depth = max(1, max(tree_depth(root) for root in model.node_trees))
        trees = len(model.node_trees)
        splits, bits = self._split_bits(model, {(s.kind, s.feature, s.border) for s in model.splits}, prefix)
        position = {s: i for i, s in enumerate(splits)}
        pad = len(splits)  # the always-false row
        levels = [np.full((trees, 1 << d), pad, dtype=np.int32) for d in range(depth)]
        leaves = np.zeros((trees, 1 << depth, K), dtype=np.float64)
        for t, root in enumerate(model.node_trees):
            stack = [(root, 0, 0)]
            while stack:
                n, d, j = stack.pop()
                if n.split is None or n.left is None or n.right is None:
                    leaves[t, level_leaf(j, d, depth), :] = leaf_values(n)
                    continue
                levels[d][t, j] = position[(n.split.kind, n.split.feature, n.split.border)]
                stack.append((n.left, d + 1, 2 * j))
                stack.append((n.right, d + 1, 2 * j + 1))
        # The bits stay bool ([splits + 1, N], a byte each, no cast of every split's row); only the
        # bit each tree takes at a level ([trees, N]) becomes int32.
        index = self.node(
            "Cast",
            [self.node("Gather", [bits, self.const(f"{prefix}_roots", levels[0][:, 0].astype(np.int64))], axis=0)],
            f"{prefix}_j1",
            to=TensorProto.INT32,
        )  # [trees, N]: the roots' bits, each tree's node index at level 1
        for d in range(1, depth):
            split = self.node(
                "GatherElements", [self.const(f"{prefix}_level{d}", levels[d]), index], f"{prefix}_split{d}", axis=1
            )  # [trees, N]: the row of the current node's split
            bit = self.node("GatherElements", [bits, split], f"{prefix}_bit{d}", axis=0)
            index = self.node(
                "Add",
                [
                    self.node("Add", [index, index], f"{prefix}_twice{d}"),
                    self.node("Cast", [bit], f"{prefix}_bit{d}_i32", to=TensorProto.INT32),
                ],
                f"{prefix}_j{d + 1}",
            )
        axis0 = self.const(f"{prefix}_tree_axis", np.array([0], dtype=np.int64))
        if K == 1:
            values = self.node(
                "GatherElements",
                [self.const(f"{prefix}_leaf_values", leaves[:, :, 0]), index],
                f"{prefix}_vals",
                axis=1,
            )  # [trees, N]
            raw = self.node("ReduceSum", [values, axis0], f"{prefix}_sum", keepdims=0)  # [N]
            return self._scale_and_bias(
                model,
                self.node("Unsqueeze", [raw, self.const(f"{prefix}_column", np.array([1], np.int64))], f"{prefix}_n1"),
                prefix,
            )
        # K values per leaf: one [trees, 2^D] table and one GatherElements per class (10-30 % faster
        # than one Gather of K values per leaf from a flat table), each summed over the trees.
        sums = []
        for k in range(K):
            table = np.ascontiguousarray(leaves[:, :, k])
            values = self.node(
                "GatherElements", [self.const(f"{prefix}_leaf_values{k}", table), index], f"{prefix}_vals{k}", axis=1
            )  # [trees, N]
            sums.append(self.node("ReduceSum", [values, axis0], f"{prefix}_sum{k}", keepdims=1))  # [1, N]
        raw = self.node("Transpose", [self.node("Concat", sums, f"{prefix}_classes", axis=0)], f"{prefix}_sum")
        return self._scale_and_bias(model, raw, prefix)  # [N, K]

    def ensemble_raw(self, model: CatBoostModel, prefix: str) -> str:
        """Adds a TreeEnsemble (ai.onnx.ml opset 5, float64) computing the model's raw values ([N, dimension]).

        Its input matrix holds, per record, the numeric features, the CTR values (float32,
        widened exactly) and the vocabulary index of every one-hot encoded feature; every
        split is one comparison in float64 of values that are float32 numbers, which is
        exactly CatBoost's float32 comparison, and the leaves are summed in float64.
        """
        self._check_inputs(model)
        columns: list[str] = []
        ncols = 0
        col_of: dict[tuple[str, int], int] = {}
        if self.numeric:
            columns.append(self.node("Cast", [self.x_rows], f"{prefix}_x64", to=TensorProto.DOUBLE))
            ff = model.float_features
            col_of.update({("float", f.index): self.numeric_col[f.name] for f in ff})
            ncols = len(self.numeric)
        used_ctrs = sorted({s.feature for s in model.splits if s.kind == "ctr"})
        if used_ctrs:
            ctr_values = self._ctr_values(model, prefix)  # [ctrs, N] float32
            rows = self.const(f"{prefix}_used_ctrs", np.array(used_ctrs, dtype=np.int64))
            picked = self.node("Gather", [ctr_values, rows], f"{prefix}_ctr_used", axis=0)
            columns.append(
                self.node(
                    "Cast",
                    [self.node("Transpose", [picked], f"{prefix}_ctr_t")],
                    f"{prefix}_ctr64",
                    to=TensorProto.DOUBLE,
                )
            )
            col_of.update({("ctr", c): ncols + i for i, c in enumerate(used_ctrs)})
            ncols += len(used_ctrs)
        onehot = sorted({s.feature for s in model.splits if s.kind == "onehot"})
        vocab_hash = {
            c.index: [cat_feature_hash(v) for v in self.categorical[c.name].vocabulary] for c in model.cat_features
        }
        for c in onehot:
            name = model.cat_features[c].name
            columns.append(self.node("Cast", [self.cat_index[name]], f"{prefix}_onehot64", to=TensorProto.DOUBLE))
            col_of[("onehot", c)] = ncols
            ncols += 1
        if not columns:  # a model without splits still needs an input of the right length
            columns.append(
                self.node(
                    "Cast",
                    [self.cat_index[self.order[0]]] if self.order[0] in self.cat_index else [self.x_rows],
                    f"{prefix}_any64",
                    to=TensorProto.DOUBLE,
                )
            )
            ncols = 1
        x = self.node("Concat", columns, f"{prefix}_features", axis=1) if len(columns) > 1 else columns[0]

        nan_true = {f.index: f.nan_as_true for f in model.float_features}
        featureids: list[int] = []
        modes: list[int] = []
        splits: list[float] = []
        true_ids: list[int] = []
        true_leaf: list[int] = []
        false_ids: list[int] = []
        false_leaf: list[int] = []
        missing_true: list[int] = []
        roots: list[int] = []
        leaf_target: list[int] = []
        leaf_weight: list[float] = []

        def add_node(split: Split | None) -> int:
            i = len(featureids)
            if split is None:  # a tree without splits: one always-false test leading to its only leaf
                featureids.append(0)
                modes.append(BRANCH_EQ)
                splits.append(float("nan"))
                missing_true.append(0)
            elif split.kind == "onehot":
                hashes = vocab_hash[split.feature]
                featureids.append(col_of[("onehot", split.feature)])
                modes.append(BRANCH_EQ)
                splits.append(float(hashes.index(int(split.border))) if int(split.border) in hashes else -1.0)
                missing_true.append(0)
            else:
                featureids.append(col_of[(split.kind, split.feature)])
                modes.append(BRANCH_GT)
                splits.append(float(split.border))
                missing_true.append(int(split.kind == "float" and nan_true[split.feature]))
            true_ids.append(0)
            true_leaf.append(0)
            false_ids.append(0)
            false_leaf.append(0)
            return i

        def add_leaf(value: float, target: int) -> int:
            leaf_target.append(target)
            leaf_weight.append(value)
            return len(leaf_weight) - 1

        def link(node: int, branch: bool, child: int, is_leaf: bool) -> None:
            (true_ids if branch else false_ids)[node] = child
            (true_leaf if branch else false_leaf)[node] = int(is_leaf)

        K = model.dimension

        def single_leaf(value: float, k: int) -> int:
            node = add_node(None)
            leaf = add_leaf(value, k)
            link(node, True, leaf, True)
            link(node, False, leaf, True)
            return node

        def oblivious(tree: Tree, d: int, index: int, k: int) -> tuple[int, bool]:
            if d == len(tree.splits):
                return add_leaf(tree.leaf_values[oblivious_leaf(index, d) * K + k], k), True
            node = add_node(tree.splits[d])
            for bit in (0, 1):
                child, is_leaf = oblivious(tree, d + 1, index | (bit << d), k)
                link(node, bool(bit), child, is_leaf)
            return node, False

        def walk(n: Node, k: int) -> tuple[int, bool]:
            if n.split is None or n.left is None or n.right is None:
                return add_leaf(leaf_values(n)[k], k), True
            node = add_node(n.split)
            for branch, child_node in ((False, n.left), (True, n.right)):
                child, is_leaf = walk(child_node, k)
                link(node, branch, child, is_leaf)
            return node, False

        # Trees without a split add a constant, added after the ensemble (a node whose two
        # branches share one leaf is miscounted by onnxruntime for some multi-target ensembles).
        constant = np.zeros(K, dtype=np.float64)
        for k in range(K):
            if model.symmetric:
                for tree in model.trees:
                    if tree.splits:
                        roots.append(oblivious(tree, 0, 0, k)[0])
                    else:
                        constant[k] += tree.leaf_values[k]
            else:
                for root in model.node_trees:
                    if root.split is not None:
                        roots.append(walk(root, k)[0])
                    else:
                        constant[k] += leaf_values(root)[k]
        if not roots:
            roots.append(single_leaf(0.0, 0))

        raw = self.node(
            "TreeEnsemble",
            [x],
            f"{prefix}_trees",
            domain="ai.onnx.ml",
            n_targets=K,
            aggregate_function=1,  # SUM
            post_transform=0,
            tree_roots=roots,
            nodes_featureids=featureids,
            nodes_modes=numpy_helper.from_array(np.array(modes, dtype=np.uint8)),
            nodes_splits=numpy_helper.from_array(np.array(splits, dtype=np.float64)),
            nodes_truenodeids=true_ids,
            nodes_trueleafs=true_leaf,
            nodes_falsenodeids=false_ids,
            nodes_falseleafs=false_leaf,
            nodes_missing_value_tracks_true=missing_true,
            leaf_targetids=leaf_target,
            leaf_weights=numpy_helper.from_array(np.array(leaf_weight, dtype=np.float64)),
        )  # [N, K] float64
        if constant.any():
            raw = self.node("Add", [raw, self.const(f"{prefix}_constant_trees", constant.reshape(1, K))], f"{prefix}_c")
        return self._scale_and_bias(model, raw, prefix)

    def _scale_and_bias(self, model: CatBoostModel, raw: str, prefix: str) -> str:
        """CatBoost's scale and bias applied to the sum of the leaves (float64)."""
        if model.scale != 1.0:
            raw = self.node("Mul", [raw, self.const(f"{prefix}_scale", np.array(model.scale))], f"{prefix}_scaled")
        if any(b != 0.0 for b in model.biases):
            raw = self.node(
                "Add", [raw, self.const(f"{prefix}_bias", np.array([model.biases], dtype=np.float64))], f"{prefix}_raw"
            )
        return raw

    def _check_inputs(self, model: CatBoostModel) -> None:
        for f in model.float_features:
            if f.name not in self.numeric_col:
                raise CompileError(f"{model.path}: float feature {f.name} is not a numeric input of the graph")
        for c in model.cat_features:
            if c.name not in self.categorical:
                raise CompileError(f"{model.path}: categorical feature {c.name} is not a string input of the graph")

    def prediction(self, model: CatBoostModel, raw: str, prefix: str) -> str:
        """The model's prediction as catboost's predict()/predict_proba()[:, 1] returns it (float64)."""
        if model.transform == "exp":
            return self.node("Exp", [raw], f"{prefix}_exp")
        if model.transform == "sigmoid":
            return self.node("Sigmoid", [raw], f"{prefix}_sigmoid")
        if model.transform == "softmax":
            return self.node("Softmax", [raw], f"{prefix}_softmax", axis=1)
        return raw

    def _ctr_values(self, model: CatBoostModel, prefix: str) -> str:
        """[len(model.ctrs), N] float32 CTR values."""
        cats = model.cat_features
        vocab = {c.index: self.categorical[c.name].vocabulary for c in cats}
        vocab_hash = {i: [cat_feature_hash(v) for v in vs] for i, vs in vocab.items()}
        float_elems = sorted({(e.feature, e.border) for c in model.ctrs for e in c.elements if e.kind == "float"})
        onehot_elems = sorted({(e.feature, e.border) for c in model.ctrs for e in c.elements if e.kind == "onehot"})
        bit_col = {("float", *fe): i for i, fe in enumerate(float_elems)}
        bit_col.update({("onehot", *oe): len(float_elems) + i for i, oe in enumerate(onehot_elems)})

        # Per CTR: key = offset + sum(digit * place), digits are category indices and float/one-hot bits.
        cat_place = np.zeros((len(cats), len(model.ctrs)), dtype=np.int64)
        bit_place = np.zeros((len(bit_col), len(model.ctrs)), dtype=np.int64)
        offsets = np.zeros(len(model.ctrs), dtype=np.int64)
        keys: list[int] = []
        values: list[float] = []
        base = 0
        for j, ctr in enumerate(model.ctrs):
            radices = [len(vocab[e.feature]) + 1 if e.kind == "cat" else 2 for e in ctr.elements]
            places = [int(np.prod(radices[i + 1 :], dtype=np.int64)) for i in range(len(radices))]
            for e, p in zip(ctr.elements, places, strict=True):
                if e.kind == "cat":
                    cat_place[e.feature, j] += p
                else:
                    bit_place[bit_col[(e.kind, e.feature, e.border)], j] += p
            offsets[j] = base
            size = int(np.prod(radices, dtype=np.int64))
            if size > 5_000_000:
                raise CompileError(f"{model.path}: a CTR combination has {size} cases; too many to tabulate")
            for digits in itertools.product(*(range(r) for r in radices)):
                keys.append(base + sum(d * p for d, p in zip(digits, places, strict=True)))
                values.append(float(self._ctr_case(ctr, digits, vocab_hash)))
            base += size

        # Keys in [ctrs, N] layout: place^T [ctrs, digits] x digits [digits, N]. A float32 (or, for
        # very large tables, float64) MatMul: every key is an integer below 2^24 (2^53), so exact.
        dtype, np_dtype = (TensorProto.FLOAT, np.float32) if base < 2**24 else (TensorProto.DOUBLE, np.float64)
        cat_idx = self.node("Concat", [self.cat_index[c.name] for c in cats], f"{prefix}_cat_idx", axis=1)
        cat_idx_t = self.node("Transpose", [cat_idx], f"{prefix}_cat_idx_t")  # [cats, N] int64
        digit_rows = [self.node("Cast", [cat_idx_t], f"{prefix}_cat_digits", to=dtype)]
        place_blocks = [cat_place]
        if float_elems:
            ff = model.float_features
            bits = self.float_bits(
                [self.numeric_col[ff[f].name] for f, _ in float_elems],
                [b for _, b in float_elems],
                [ff[f].nan_as_true for f, _ in float_elems],
                f"{prefix}_ctr_elem",
            )  # [float elements, N]
            digit_rows.append(self.node("Cast", [bits], f"{prefix}_ctr_bits", to=dtype))
        if onehot_elems:
            rows = self.const(f"{prefix}_ctr_onehot_rows", np.array([f for f, _ in onehot_elems], dtype=np.int64))
            wanted = [vocab_hash[f].index(int(v)) if int(v) in vocab_hash[f] else -1 for f, v in onehot_elems]
            eq = self.node(
                "Equal",
                [
                    self.node("Gather", [cat_idx_t, rows], f"{prefix}_ctr_onehot_x", axis=0),
                    self.const(f"{prefix}_ctr_onehot_k", np.array(wanted, dtype=np.int64).reshape(-1, 1)),
                ],
                f"{prefix}_ctr_onehot",
            )  # [one-hot elements, N]
            digit_rows.append(self.node("Cast", [eq], f"{prefix}_ctr_onehot_bits", to=dtype))
        if float_elems or onehot_elems:
            place_blocks.append(bit_place)
        all_digits = (
            self.node("Concat", digit_rows, f"{prefix}_ctr_digits", axis=0) if len(digit_rows) > 1 else digit_rows[0]
        )
        place_t = np.concatenate(place_blocks, axis=0).T.astype(np_dtype)  # [ctrs, digits]
        key = self.node("MatMul", [self.const(f"{prefix}_ctr_place", place_t), all_digits], f"{prefix}_ctr_key_f")
        key = self.node("Add", [key, self.const(f"{prefix}_ctr_offsets", offsets.astype(np_dtype).reshape(-1, 1))])
        key = self.node("Cast", [key], f"{prefix}_ctr_key", to=TensorProto.INT64)  # [ctrs, N]
        return self.node(
            "LabelEncoder",
            [key],
            f"{prefix}_ctr",
            domain="ai.onnx.ml",
            keys_int64s=keys,
            values_floats=values,
            default_float=float("nan"),
        )

    @staticmethod
    def _ctr_case(ctr: Ctr, digits: tuple[int, ...], vocab_hash: dict[int, list[int]]) -> np.float32:
        h = 0
        for e, d in zip(ctr.elements, digits, strict=True):
            if e.kind == "cat":
                if d == len(vocab_hash[e.feature]):  # a value never seen in training
                    return ctr.value(None)
                v = vocab_hash[e.feature][d]
                h = combine_hash(h, v if v < 2**31 else (v - 2**32) & MASK)  # int32 sign extension
            else:  # float and one-hot elements: the digit is the bit
                h = combine_hash(h, d)
        return ctr.value(ctr.table.get(h))

    # -- assembly ------------------------------------------------------------
    def output(self, value: str, name: str) -> None:
        self.nodes.append(helper.make_node("Cast", [value], [name], name=f"{name}_out", to=TensorProto.FLOAT))

    def build(
        self, graph_name: str, outputs: list[str], metadata: dict[str, str], widths: dict[str, int] | None = None
    ) -> onnx.ModelProto:
        inputs = [
            helper.make_tensor_value_info(
                n, TensorProto.STRING if n in self.categorical else TensorProto.FLOAT, ["N", 1]
            )
            for n in self.order
        ]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", (widths or {}).get(o, 1)]) for o in outputs]
        graph = helper.make_graph(self.nodes, graph_name, inputs, outs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset), helper.make_opsetid("ai.onnx.ml", self.ml_opset)],
            producer_name="fnol-model-compiler",
        )
        model.ir_version = 8 if self.opset <= 18 else 10
        for k, v in metadata.items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
        onnx.checker.check_model(model, full_check=True)
        return model
