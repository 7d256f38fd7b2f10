"""The model protocol, the registry, and the saved-model directory format.

A saved model is a directory holding ``model.json`` (format version, model
name, resolved config, vocabulary, validation metrics, kt version, data
fingerprint) and ``params.eqx`` (equinox leaf serialisation; no pickle).
It is written to a temporary sibling directory and renamed into place.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.data.vocab import Vocab
from kt.errors import KTError, ModelError
from kt.models import config as cfgmod

if TYPE_CHECKING:
    from kt.data.graph import PrerequisiteGraph

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
PARAMS_FILE = "params.eqx"
HISTORY_FILE = "history.jsonl"  # per-epoch training metrics of gradient models


@runtime_checkable
class KTModel(Protocol):
    """What every kt model provides (see ARCHITECTURE.md)."""

    name: ClassVar[str]

    def fit(
        self, data: Interactions, *, valid: Interactions | None = None, key: Any = None, progress: Any = None
    ) -> "KTModel": ...

    def predict(self, data: Interactions) -> pl.DataFrame: ...

    def predict_ahead(self, history: Interactions, future: Interactions, mode: str = "nonacc") -> pl.DataFrame: ...

    def mastery(self, data: Interactions) -> pl.DataFrame: ...

    def graph(self) -> "PrerequisiteGraph | None": ...

    def save(self, path: str | Path) -> Path: ...


REGISTRY: dict[str, type["Model"]] = {}


def register(cls: type["Model"]) -> type["Model"]:
    """Class decorator adding a model to the registry under ``cls.name``."""
    REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type["Model"]:
    """Model class by registry name.

    Raises:
        KTError: unknown name (the message lists the known ones).
    """
    _ensure_builtin(name)
    if name not in REGISTRY:
        raise KTError(f"unknown model {name!r}; available: {', '.join(sorted(REGISTRY))} (see `kt models`)")
    return REGISTRY[name]


def create(name: str, *, toml_path: str | os.PathLike[str] | None = None, sets: list[str] | None = None, **overrides) -> "Model":
    """Instantiate a registered model with a resolved config.

    Args:
        name: registry name (``kt models`` lists them).
        toml_path: optional TOML config file.
        sets: ``key=value`` overrides.
        **overrides: config fields set directly from Python.

    Returns:
        An unfitted model.
    """
    cls = get(name)
    cfg = cfgmod.resolve(cls.Config, toml_path=toml_path, sets=sets, model=name)
    if overrides:
        fields = {f.name for f in dataclasses.fields(cfg)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise KTError(f"unknown option {unknown[0]!r} for model {name!r}; options: {', '.join(sorted(fields)) or 'none'}")
        cfg = dataclasses.replace(cfg, **overrides)
        check = getattr(cfg, "validate", None)
        if check is not None:
            check()
    return cls.variant(cfg)(cfg)


_BUILTIN = {
    "majority": "kt.models.baselines",
    "kc-rate": "kt.models.baselines",
    "bkt": "kt.models.bkt.model",
    "dkt": "kt.models.dkt.model",
    "cakt": "kt.models.cakt.model",
    "psikt": "kt.models.psikt.model",
}


def _ensure_builtin(name: str | None = None) -> None:
    # Importing a module registers its classes; done lazily so that `import
    # kt` stays light, and only for the model asked for (a BKT run should not
    # pay for importing optax and the neural models). ``None``: all of them.
    import importlib

    if name is not None and name in REGISTRY:
        return
    for module in [_BUILTIN[name]] if name in _BUILTIN else sorted(set(_BUILTIN.values())):
        importlib.import_module(module)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model class supports, declared once; the API and the CLI read it instead of probing.

    Attributes:
        resumable: ``fit`` takes ``checkpoint=``/``resume=`` (``kt train --resume``).
        streams: ``fit`` takes a partitioned-data view (``kt train DIR`` without loading it whole).
        devices: ``fit`` takes ``devices=`` (data-parallel over several devices).
        on_step: ``fit`` takes ``on_step=`` (live progress within an epoch or EM iteration).
        history_modes: the config has ``eval_mode`` (``kt evaluate --eval-mode``).
        graph: the graph the model has of its own: ``learned`` (``graph()``),
            ``conditional-influence`` (``influence_matrix()``) or None.
        update: continual per-learner ``update(new)`` (``kt update``).
        params_table: ``params_table()`` (``kt train`` prints it, ``kt params`` exports it).
    """

    resumable: bool = False
    streams: bool = False
    devices: bool = False
    on_step: bool = False
    history_modes: bool = False
    graph: str | None = None
    update: bool = False
    params_table: bool = False


class Updatable(Protocol):
    """A model whose ``capabilities.update`` is set: continual per-learner updates (``kt update``)."""

    def update(self, new: Interactions, *, steps: int | None = None, lr: float | None = None, key: Any = 0) -> dict: ...


class HasParamsTable(Protocol):
    """A model whose ``capabilities.params_table`` is set (``kt train`` prints it, ``kt export-params`` writes it)."""

    def params_table(self) -> pl.DataFrame: ...


class Model:
    """Shared behaviour for kt models: config, vocab, predictions frame, save/load.

    Subclasses set ``name``, ``Config`` and ``capabilities``, and implement
    ``fit``, ``_predict_probs``, ``_skeleton`` and optionally ``mastery``/``graph``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    summary: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()
        self.vocab: Vocab | None = None
        self.params: Any = None
        self.meta: dict = {}

    @classmethod
    def saved_config(cls, raw: dict) -> dict:
        """A saved ``config`` brought up to date (e.g. an option added later whose default changed)."""
        return raw

    @classmethod
    def variant(cls, config) -> type["Model"]:
        """The class implementing ``config`` (a registered model may choose a variant by an option)."""
        return cls

    # -- to implement -------------------------------------------------
    def fit(self, data: Interactions, *, valid: Interactions | None = None, key: Any = None, progress: Any = None) -> "Model":
        """Fit on ``data`` (validation data optional); returns ``self``.

        The other parameters are taken by the models whose
        :class:`Capabilities` say so: ``checkpoint`` and ``resume``
        (``resumable``), ``devices`` and ``on_step``.

        Args:
            data: training interactions.
            valid: validation learners (early stopping), or ``None``.
            key: JAX PRNG key or integer seed.
            progress: callable receiving each epoch's record (gradient models).

        Other Parameters:
            checkpoint: directory for per-epoch checkpoints.
            resume: continue from ``checkpoint`` (same data, options and seed).
            devices: devices to split each batch over (``None``: all; see
                :mod:`kt.train.shard`).
            on_step: progress hook ``(done, total, metrics)`` per batch (see
                :func:`kt.train.loop.run`).

        Returns:
            ``self``.
        """
        raise NotImplementedError

    def _predict_probs(self, data: Interactions) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
        """P(correct) for every row of ``data.frame``, from the history before it.

        May also return extra per-row columns as ``(probs, {name: values})``.
        """
        raise NotImplementedError

    def _skeleton(self) -> Any:
        """A pytree shaped like ``self.params`` for deserialisation."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------
    def _record_fit(self, run: Callable[[], Any], params: Callable[[Any], Any], meta: dict, failed: dict | None = None) -> Any:
        """Run a training call of :mod:`kt.train.loop` and keep its outcome on the model.

        A run that stops on a non-finite loss still leaves its last good
        parameters and history on the model before the error propagates.

        Args:
            run: the training call; returns a :class:`kt.train.loop.FitResult`.
            params: ``self.params`` made from a result.
            meta: the dict that becomes ``self.meta``, with ``history``,
                ``best_epoch`` and ``stopped`` added (only ``history`` and
                ``stopped`` when the loss became non-finite).
            failed: more entries for ``meta`` when the loss became non-finite.

        Returns:
            The :class:`kt.train.loop.FitResult`.
        """
        from kt.train.loop import NonFiniteLoss  # here: models without a training loop never import JAX

        try:
            res = run()
        except NonFiniteLoss as exc:
            self.params = params(exc.result)
            self.meta = meta
            meta.update({"history": exc.result.history, "stopped": "non-finite", **(failed or {})})
            raise
        self.params = params(res)
        self.meta = meta
        meta.update({"history": res.history, "best_epoch": res.best_epoch, "stopped": res.stopped})
        return res

    def _require_fitted(self) -> None:
        if self.params is None or self.vocab is None:
            raise ModelError(f"model {self.name!r} is not fitted; call fit() or load a saved model")

    @property
    def _fitted_vocab(self) -> Vocab:
        """``vocab`` once ``fit`` (or loading) has set it; ModelError before."""
        if self.vocab is None:
            raise ModelError(f"model {self.name!r} is not fitted; call fit() or load a saved model")
        return self.vocab

    def predict(self, data: Interactions) -> pl.DataFrame:
        """One probability per attempt, from the learner's history before it.

        Args:
            data: interactions encoded with this model's vocabulary.

        Returns:
            Frame with ``user_id``, ``skill_id``, ``item_id``, ``position``
            (0-based attempt index within the learner), ``line``,
            ``correct`` and ``prob``, in the order of ``data.frame``.
        """
        self._require_fitted()
        out = self._predict_probs(data)
        probs, extra = out if isinstance(out, tuple) else (out, {})
        f = data.frame
        return f.select(
            "user_id",
            "skill_id",
            "item_id",
            pl.int_range(pl.len()).over("user_idx").alias("position"),
            "line",
            "correct",
        ).with_columns(pl.Series("prob", np.asarray(probs, dtype=np.float64)), *(pl.Series(k, v) for k, v in extra.items()))

    def predict_ahead(self, history: Interactions, future: Interactions, mode: str = "nonacc") -> pl.DataFrame:
        """Open-loop multi-step prediction of ``future`` after ``history``.

        The generic implementation (:func:`kt.models.ahead.predict_ahead`)
        predicts each future attempt as the last attempt of a pseudo-learner
        built from the history (and, in ``acc`` mode, the earlier future
        attempts with the model's own thresholded predictions as outcomes),
        so it is valid for every model. Models with their own open-loop
        propagation override this method.

        Args:
            history: observed attempts, learner-sorted.
            future: the attempts to predict, each learner's right after its
                history, learner-sorted.
            mode: ``nonacc`` (non-accumulative) or ``acc`` (accumulative).

        Returns:
            One row per future attempt: ``user_id``, ``skill_id``,
            ``item_id``, ``position``, ``step`` (1-based), ``line``,
            ``correct``, ``prob`` and the model's extra columns.
        """
        from kt.models.ahead import predict_ahead

        return predict_ahead(self, history, future, mode)

    def mastery(self, data: Interactions) -> pl.DataFrame:
        """Knowledge state per learner x KC after the history (model-specific)."""
        raise KTError(f"model {self.name!r} does not provide mastery estimates")

    def graph(self) -> "PrerequisiteGraph | None":
        """Learned prerequisite graph, or ``None`` when the model has none."""
        return None

    def save(self, path: str | Path, *, extra_files: dict[str, str] | None = None) -> Path:
        """Write the model directory atomically.

        Args:
            path: target directory (replaced if it is a kt model directory).
            extra_files: more files for the directory, name -> text (e.g.
                ``graph.json``); written before the rename, so atomically too.

        Returns:
            The directory path.
        """
        import equinox as eqx

        self._require_fitted()
        target = Path(path)
        if target.exists() and (not target.is_dir() or (not (target / MODEL_JSON).exists() and any(target.iterdir()))):
            raise KTError(f"{target}: exists and is not a kt model directory; choose another --out")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give a normal directory's mode
            header = {
                "format_version": FORMAT_VERSION,
                "model": self.name,
                "kt_version": _kt_version(),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "config": cfgmod.to_dict(self.config),
                "vocab": self._fitted_vocab.to_dict(),
                "meta": self.meta,
            }
            (tmp / MODEL_JSON).write_text(json.dumps(header, indent=1, default=_json_default))
            history = self.meta.get("history")
            if history:
                lines = (json.dumps(rec, default=_json_default) for rec in history)
                (tmp / HISTORY_FILE).write_text("\n".join(lines) + "\n")
            eqx.tree_serialise_leaves(tmp / PARAMS_FILE, self.params)
            for name, text in (extra_files or {}).items():
                if Path(name).name != name or name in (MODEL_JSON, PARAMS_FILE, HISTORY_FILE):
                    raise ValueError(f"extra_files: {name!r} must be a plain file name other than kt's own")
                (tmp / name).write_text(text, encoding="utf-8")
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
                os.rename(target, old / "m")
                try:
                    os.rename(tmp, target)
                except BaseException:
                    os.rename(old / "m", target)  # put the previous model back
                    shutil.rmtree(old, ignore_errors=True)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target


def load(path: str | Path) -> Model:
    """Load a saved model directory.

    Args:
        path: directory written by :meth:`Model.save`.

    Returns:
        The fitted model.

    Raises:
        ModelError: missing files, unknown model, or a newer format version.
    """
    import equinox as eqx

    d = Path(path)
    mj = d / MODEL_JSON
    if not mj.exists():
        raise ModelError(f"{d}: not a kt model directory (no {MODEL_JSON}); train one with `kt train ... --out {d}`")
    try:
        header = json.loads(mj.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{mj}: corrupt model header ({exc}); retrain the model") from None
    if not isinstance(header, dict) or not isinstance(header.get("vocab"), dict):
        raise ModelError(f"{mj}: corrupt model header (not a kt model.json); retrain the model")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(
            f"{mj}: saved with model format {version}, this kt reads up to {FORMAT_VERSION}; upgrade kt (pip install -U kt-trace)"
        )
    try:
        cls = get(header.get("model", "?"))
    except KTError as exc:
        raise ModelError(f"{mj}: {exc}") from None
    cfg = cfgmod.from_dict(cls.Config, cls.saved_config(dict(header.get("config", {}))))
    model = cls.variant(cfg)(cfg)
    model.vocab = Vocab.from_dict(header["vocab"])
    model.meta = header.get("meta", {})
    try:
        model.params = eqx.tree_deserialise_leaves(d / PARAMS_FILE, model._skeleton())
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{d / PARAMS_FILE}: cannot read parameters ({exc}); retrain the model") from None
    return model


def read_header(path: str | Path) -> dict:
    """The ``model.json`` of a saved model (for inspection without loading)."""
    mj = Path(path) / MODEL_JSON
    if not mj.exists():
        raise ModelError(f"{path}: not a kt model directory (no {MODEL_JSON})")
    return json.loads(mj.read_text())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kt_version() -> str:
    from kt import __version__

    return __version__


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
