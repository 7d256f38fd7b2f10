"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 (see tests/train/test_sharding.py).

Usage: shard_equality.py DATA.csv MODEL. Trains MODEL (dkt or cakt) for one
epoch (a few steps) on one device and on four (batch sharded, parameters
replicated) from the same seed and prints the largest parameter difference
as JSON.
"""

import json
import sys

import equinox as eqx
import jax
import numpy as np

import kt
from kt.models.base import create

assert jax.device_count() == 4, jax.devices()
data = kt.load(sys.argv[1])
out = {}
SETTINGS = {"dkt": ["hidden=16", "dropout=0.2", "batch_size=24", "window=30"], "cakt": ["batch_size=16", "window=20", "frame=4"]}
for name in sys.argv[2:]:
    sets = SETTINGS[name]
    params = {}
    for devices in (1, 4):
        m = create(name, sets=sets + ["epochs=1"])
        m.fit(data, valid=None, key=3, devices=devices)
        params[devices] = m.params
    a = jax.tree.leaves(eqx.filter(params[1], eqx.is_array))
    b = jax.tree.leaves(eqx.filter(params[4], eqx.is_array))
    diffs = [float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b) if x.size]
    moved = max(float(np.max(np.abs(np.asarray(x)))) for x in a if x.size)
    out[name] = {
        "max_abs_diff": max(diffs),
        "n_leaves": len(diffs),
        "max_abs_param": moved,
        "devices_of_result": len(a[0].devices()),
    }
print(json.dumps(out))
