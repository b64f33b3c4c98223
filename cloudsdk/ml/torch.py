"""PyTorch loaders: a streaming ``IterableDataset`` and a ``DataLoader`` over a dataset source.

Importing this module does not import torch; the functions do, and say which extra to
install when it is missing (``pip install 'cloudsdk[torch]'``).

How rows are dealt (see ``docs/pytorch.md``):

* The units of the source (Parquet row groups, or whole files) are put in the epoch's
  order — natural, or a permutation of ``seed`` and the epoch — and dealt to the
  distributed ranks, then within a rank to its DataLoader workers, each unit to exactly
  one of them (balanced by rows where the row counts are known). So in one epoch every row
  arrives exactly once over all ranks and workers.
* Each shard (one worker of one rank) reads its units one after the other, the next one in
  a thread while the current one is being batched, shuffles the rows within each unit
  when ``shuffle``, and cuts them into batches of ``batch_size`` rows, carrying rows over
  from one unit to the next. Only its own last batch may be shorter; ``drop_last`` drops it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from cloudsdk.errors import InvalidArgumentError
from cloudsdk.ml.source import (
    FEATURES_KEY,
    Chunk,
    DatasetSource,
    Selection,
    epoch_order,
    read_ahead,
    rebatch,
    select_columns,
    split_units,
    unit_chunks,
)

__all__ = ["TorchStream", "torch_dataloader", "torch_dataset"]

_INSTALL = "PyTorch is not installed: pip install 'cloudsdk[torch]'"
_CLASS_NAMES = ("StreamingDataset", "EpochDataLoader")
_classes: dict[str, type] = {}


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return torch


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` group, else (0, 1)."""
    torch = _torch()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


class TorchStream:
    """The framework-free part of the dataset: which units a shard reads, and its batches.

    Picklable (it travels to DataLoader workers). Each pass over it is one epoch.
    """

    def __init__(self, source: DatasetSource, selection: Selection, *, batch_size: int,
                 shuffle: bool, seed: int, drop_last: bool, rank: int | None,
                 world_size: int | None, read_ahead: bool) -> None:
        self.source = source
        self.selection = selection
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.explicit_rank = rank is not None
        self.rank, self.world_size = (rank, world_size) if rank is not None and world_size is not None \
            else _distributed()
        self.read_ahead = read_ahead
        self.units = source.units()
        self.epoch = 0
        self.passes = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (and the passes after it ``epoch + 1``, ...)."""
        self.epoch = int(epoch)
        self.passes = 0
        if not self.explicit_rank:
            self.rank, self.world_size = _distributed()

    def shard(self, epoch: int, worker: int, num_workers: int) -> list[int]:
        """The unit indices this rank's ``worker`` reads in ``epoch``, in reading order."""
        order = epoch_order(len(self.units), shuffle=self.shuffle, seed=self.seed, epoch=epoch)
        mine = split_units(order, self.units, self.world_size)[self.rank]
        return split_units(mine, self.units, num_workers)[worker]

    def batches(self, worker: int = 0, num_workers: int = 1) -> Iterator[Chunk]:
        """One epoch of this shard's batches (the next epoch on the next call)."""
        epoch = self.epoch + self.passes
        self.passes += 1
        indices = self.shard(epoch, worker, num_workers)

        def load(i: int) -> list[Chunk]:
            return list(unit_chunks(self.source, self.units[i], i, self.selection,
                                    shuffle=self.shuffle, seed=self.seed, epoch=epoch))

        if self.read_ahead:
            chunks: Iterator[Chunk] = itertools.chain.from_iterable(read_ahead(indices, load))
        else:
            chunks = itertools.chain.from_iterable(
                unit_chunks(self.source, self.units[i], i, self.selection, shuffle=self.shuffle,
                            seed=self.seed, epoch=epoch) for i in indices)
        yield from rebatch(chunks, self.batch_size, drop_last=self.drop_last)

    @property
    def num_rows(self) -> int:
        """Rows in the whole dataset (over all ranks), or -1 where not known."""
        rows = [u.rows for u in self.units]
        return -1 if any(r < 0 for r in rows) else sum(rows)


def _tensor(torch: Any, array: np.ndarray) -> Any:
    """One numpy column as a tensor (strings: a list of str; ragged: a list of tensors)."""
    if array.dtype == object:
        first = array[0] if len(array) else None
        if isinstance(first, np.ndarray):
            return [_tensor(torch, a) for a in array]
        return array.tolist()
    if array.dtype in (np.uint16, np.uint32, np.uint64):
        array = array.astype(np.int32 if array.dtype == np.uint16 else np.int64)
    return torch.from_numpy(np.ascontiguousarray(array))


def to_torch(torch: Any, selection: Selection, chunk: Chunk) -> Any:
    """A batch in the loader's output structure: ``(features, label)`` or a dict."""
    arrays = chunk.arrays
    if selection.stacked:
        features: Any = torch.from_numpy(np.ascontiguousarray(arrays[FEATURES_KEY]))
    else:
        features = {s.name: _tensor(torch, arrays[s.name]) for s in selection.features}
    if selection.target is None:
        return features
    return features, _tensor(torch, arrays[selection.target.name])


def _build_classes() -> dict[str, type]:
    if _classes:
        return _classes
    torch = _torch()
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info

    class StreamingDataset(IterableDataset):
        """A streaming ``IterableDataset`` of batches; see :func:`torch_dataset`."""

        def __init__(self, stream: TorchStream) -> None:
            super().__init__()
            self.stream = stream

        def set_epoch(self, epoch: int) -> None:
            """Like ``DistributedSampler.set_epoch``: the next pass is epoch ``epoch``."""
            self.stream.set_epoch(epoch)

        @property
        def epoch(self) -> int:
            """The epoch of the next pass."""
            return self.stream.epoch + self.stream.passes

        @property
        def num_rows(self) -> int:
            """Rows of the whole dataset (all ranks), or -1 where unknown."""
            return self.stream.num_rows

        def __iter__(self) -> Iterator[Any]:
            info = get_worker_info()
            worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
            selection = self.stream.selection
            for chunk in self.stream.batches(worker, workers):
                yield to_torch(torch, selection, chunk)

        def __repr__(self) -> str:
            s = self.stream
            return (f"StreamingDataset({s.source!r}, batch_size={s.batch_size}, shuffle={s.shuffle}, "
                    f"rank={s.rank}/{s.world_size}, units={len(s.units)})")

    class EpochDataLoader(DataLoader):
        """A ``DataLoader`` that starts the next epoch each time it is iterated."""

        def __init__(self, dataset: StreamingDataset, **kwargs: Any) -> None:
            super().__init__(dataset, **kwargs)
            self._stream = dataset.stream
            self._next_epoch = dataset.stream.epoch

        def set_epoch(self, epoch: int) -> None:
            """Make the next iteration epoch ``epoch``."""
            self._next_epoch = int(epoch)

        def __iter__(self) -> Any:
            self._stream.set_epoch(self._next_epoch)
            self._next_epoch += 1
            return super().__iter__()

    for cls in (StreamingDataset, EpochDataLoader):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
        _classes[cls.__name__] = cls
    return _classes


def __getattr__(name: str) -> Any:
    """The torch classes, built on first use (so that pickle finds them in workers)."""
    if name in _CLASS_NAMES:
        return _build_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def torch_dataset(source: DatasetSource, target_name: str | None = None,
                  feature_names: Sequence[str] | None = None, *, batch_size: int = 256,
                  shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                  rank: int | None = None, world_size: int | None = None,
                  stack_features: bool = True, read_ahead: bool = True) -> Any:
    """A streaming ``torch.utils.data.IterableDataset`` of batches.

    Each element is one batch: ``(features, label)`` when ``target_name`` is given —
    ``features`` a float32 tensor ``[B, F]`` when every selected feature is a numeric
    scalar and ``stack_features``, else a dict of tensors (an array column of shape
    ``(28, 28)`` gives ``[B, 28, 28]``; variable-length arrays a list of 1-D tensors,
    strings a list of str) — or the dict alone without a target. The label keeps its
    column's dtype (uint16/32/64 widen to int32/int64). Nulls become NaN in floating-point
    output; elsewhere they raise :class:`~cloudsdk.errors.DataValidationError`.

    Units are dealt to ranks and DataLoader workers so that each epoch delivers every row
    exactly once overall; see the module docstring. Wrap it with ``batch_size=None`` in a
    ``DataLoader``, or use :func:`torch_dataloader`.

    Args:
        source: The rows (e.g. a :class:`~cloudsdk.ml.source.FileSource`).
        target_name: The label column, or ``None``.
        feature_names: The feature columns (default: all but the target), in this order.
        batch_size: Rows per batch.
        shuffle: Shuffle the unit order and the rows within each unit, per epoch.
        seed: The shuffle's seed: the same seed and epoch give the same order.
        drop_last: Drop each shard's last, short batch (then up to ``batch_size - 1`` rows
            per rank and worker are skipped in that epoch).
        rank: This process's rank (default: ``torch.distributed`` if initialised, else 0).
        world_size: The number of ranks (given together with ``rank``).
        stack_features: Stack numeric scalar features into one ``[B, F]`` tensor.
        read_ahead: Read the next unit in a thread while batching the current one.

    Returns:
        The dataset; ``set_epoch(epoch)`` picks the epoch of the next pass (each pass
        otherwise advances it by one).

    Raises:
        InvalidArgumentError: Unknown target or feature names, bad batch size or ranks.
        UnsupportedError: A selected column with no tensor form.
        ImportError: torch is not installed.

    Example::

        ds = torch_dataset(source, "label", batch_size=512, shuffle=True, seed=7)
        for epoch in range(3):
            ds.set_epoch(epoch)
            for x, y in ds:
                ...
    """
    classes = _build_classes()
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, not {batch_size}")
    if (rank is None) != (world_size is None):
        raise InvalidArgumentError("give rank and world_size together (or neither)")
    if world_size is not None and rank is not None and not (world_size >= 1 and 0 <= rank < world_size):
        raise InvalidArgumentError(f"rank {rank} is not in range for world_size {world_size}")
    selection = select_columns(source.schema, target_name, feature_names, stack_features=stack_features)
    stream = TorchStream(source, selection, batch_size=batch_size, shuffle=shuffle, seed=seed,
                         drop_last=drop_last, rank=rank, world_size=world_size, read_ahead=read_ahead)
    return classes["StreamingDataset"](stream)


def torch_dataloader(source: DatasetSource, target_name: str | None = None, batch_size: int = 256,
                     shuffle: bool = False, num_workers: int = 0, seed: int = 0,
                     drop_last: bool = False, feature_names: Sequence[str] | None = None,
                     rank: int | None = None, world_size: int | None = None,
                     **dataloader_kwargs: Any) -> Any:
    """A ``torch.utils.data.DataLoader`` over :func:`torch_dataset` that advances the epoch
    each time it is iterated (``for epoch in range(n): for x, y in loader: ...`` reshuffles).

    Args:
        source: The rows.
        target_name: The label column, or ``None``.
        batch_size: Rows per batch (the dataset batches; the DataLoader gets ``batch_size=None``).
        shuffle: Shuffle per epoch (units, and rows within units).
        num_workers: DataLoader worker processes; the units are dealt among them.
        seed: The shuffle's seed.
        drop_last: Drop each shard's last short batch.
        feature_names: The feature columns (default: all but the target).
        rank: This process's rank (default: ``torch.distributed``, else 0).
        world_size: The number of ranks.
        **dataloader_kwargs: Passed to ``DataLoader`` (``pin_memory``, ``prefetch_factor``,
            ``persistent_workers``, ``multiprocessing_context``, ...), and ``stack_features``
            / ``read_ahead`` to :func:`torch_dataset`.

    Returns:
        The DataLoader; ``loader.set_epoch(e)`` sets the epoch of its next iteration.

    Raises:
        InvalidArgumentError: As :func:`torch_dataset`, or ``sampler``/``batch_sampler``
            given (a streaming dataset has none).

    Example::

        loader = torch_dataloader(source, "label", batch_size=1024, shuffle=True, num_workers=2)
        for epoch in range(5):
            for x, y in loader:
                ...
    """
    for bad in ("sampler", "batch_sampler", "collate_fn_batch_size"):
        if bad in dataloader_kwargs:
            raise InvalidArgumentError(f"{bad} cannot be used with a streaming dataset; "
                                       "shuffling and sharding are done by the dataset")
    dataset_options = {k: dataloader_kwargs.pop(k) for k in ("stack_features", "read_ahead")
                       if k in dataloader_kwargs}
    dataset = torch_dataset(source, target_name, feature_names, batch_size=batch_size, shuffle=shuffle,
                            seed=seed, drop_last=drop_last, rank=rank, world_size=world_size,
                            **dataset_options)
    return _build_classes()["EpochDataLoader"](dataset, batch_size=None, num_workers=num_workers,
                                               **dataloader_kwargs)
