"""Batched inference for one source pair: flow once, then every requested t in as few forwards as fit.

Plain PyTorch, no VapourSynth: frames in and out are (3, H, W) arrays of RGB in [0, 1]. Any size is
padded (edge replication) by a margin and to a multiple of 32, and cropped back, so originals are never
resampled.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .allocator import CreepTrim
from .backends import load_nets
from .cache import ComputeOnceCache
from .confidence import DEFAULT_FALLBACK, check_fallback, confidence_at, fall_back, flow_trust
from .errors import EngineError
from .flow import FLOW_SOURCES, FlowSource, dis_scaled, gray8
from .motion import accelerations
from .network import SuperSloMo
from .sizing import MARGIN, auto_scale, check_scale, flow_scale, network_size, pad, padded_size, shrunk
from .stages import timed
from .tiles import MULTIPLE, TilePass, forward_tiled
from .warp import RESAMPLES, Resample

__all__ = ["EngineError", "Interpolator", "select_device"]

# Peak activation memory of one interpolated sample, per pixel at width 1 in fp32 (about 1.2 GiB at
# 1280×736, from the reference notes); scaled by width and precision to pick a batch that fits.
_BYTES_PER_PIXEL = 1.2 * 2**30 / (1280 * 736)
_CPU_BUDGET = 2 * 2**30
_MIN_TILE = 128


def select_device(device_index: int | None) -> torch.device:
    """CUDA device ``device_index`` (0 when None and CUDA exists), else the CPU; -1 forces the CPU."""
    if device_index is not None and (isinstance(device_index, bool) or not isinstance(device_index, int)):
        raise EngineError(f"device_index must be an int or None, got {device_index!r}")
    if device_index == -1:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if device_index is not None:
            raise EngineError(
                f"device_index={device_index} asks for a CUDA GPU but torch sees none; "
                "leave device_index=None (or -1) to run on the CPU"
            )
        return torch.device("cpu")
    count = torch.cuda.device_count()
    index = 0 if device_index is None else device_index
    if not 0 <= index < count:
        raise EngineError(f"device_index={index} is out of range: torch sees {count} CUDA device(s)")
    return torch.device("cuda", index)


_DIS_CACHE_BYTES = 64 * 2**20


def _picture(frame: np.ndarray | Tensor) -> tuple[bytes, np.ndarray]:
    """DIS's input for a frame (its 8-bit luma) with a digest of it, the key of its flows: hashing the
    luma rather than the float RGB frame reads a twelfth of the bytes (100 MB a frame at 2160p)."""
    gray = gray8(np.asarray(frame, np.float32))
    digest = hashlib.blake2b(gray.data, digest_size=16)
    digest.update(repr(gray.shape).encode())
    return digest.digest(), gray


class Interpolator:
    """Runs a :class:`SuperSloMo` on one device, ``streams`` pairs' forwards at a time (one by default), so
    threads never oversubscribe it.

    On CUDA: channels-last weights and activations, cuDNN autotuning, fp16 autocast by default, frames
    uploaded from pinned memory on a copy stream and results downloaded after the compute lock is
    released, so one thread's transfers overlap another's forward. On the CPU the same code runs with
    no streams.

    torch's own CPU thread count is never set here: oneDNN's convolutions round differently with different
    thread counts (measured), so following ``core.num_threads`` would make frames depend on it. With more than
    one stream the caller shares the cores out first (:func:`.parallel.share_cores`); VapourSynth's other
    threads wait for a turn.

    ``fallback`` (0 to 1) turns a frame into the plain blend of the pair when the motion of its changing pixels
    is trusted less than that on average (:mod:`.confidence`); 0 turns it off (the network's frames as they
    are); None: :data:`.confidence.DEFAULT_FALLBACK` with DIS flows, off with the flow network (the original
    checkpoint's path stays as it was). ``fallback_pixels`` also moves every pixel toward the blend by its
    confidence. ``resample`` reads the final warps (:data:`.warp.Resample`); None: bicubic with DIS flows,
    bilinear with the flow network.
    """

    def __init__(
        self,
        model: SuperSloMo,
        device: torch.device,
        *,
        fp16: bool | None = None,
        batch_size: int | None = None,
        tile: int | None = None,
        flow: FlowSource | None = None,
        backend: str | None = None,
        splat: bool | None = None,
        fallback: float | None = None,
        fallback_pixels: bool = False,
        resample: Resample | None = None,
        scale: float | None = None,
        streams: int = 1,
    ) -> None:
        flow = model.flow_source if flow is None else flow
        try:
            self.fallback = check_fallback(
                (DEFAULT_FALLBACK if flow == "dis" else 0.0) if fallback is None else fallback
            )
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        if flow not in FLOW_SOURCES:
            raise EngineError(
                f"flow must be one of {FLOW_SOURCES} (or None: what the weights were trained on), got {flow!r}"
            )
        if not isinstance(fallback_pixels, bool):
            raise EngineError(f"fallback_pixels must be True or False, got {fallback_pixels!r}")
        self.fallback_pixels = fallback_pixels
        if resample is not None and resample not in RESAMPLES:
            raise EngineError(f"resample must be one of {RESAMPLES} or None (bicubic with DIS flows), got {resample!r}")
        if splat is not None and not isinstance(splat, bool):
            raise EngineError(f"splat must be True, False or None (None: True with DIS flows), got {splat!r}")
        if fp16 is None:
            fp16 = device.type == "cuda"
        if fp16 and device.type != "cuda":
            raise EngineError("fp16=True needs a CUDA device; on the CPU leave fp16=None (fp32)")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise EngineError(f"batch_size must be a positive int or None (automatic), got {batch_size!r}")
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 64 or tile % 32):
            raise EngineError(f"tile must be None (automatic) or a multiple of 32 from 64 up, got {tile!r}")
        self.cuda = device.type == "cuda"
        if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
            raise EngineError(f"streams must be a positive int, got {streams!r}")
        if streams > 1 and self.cuda:
            raise EngineError(
                f"num_streams={streams} is for the CPU: on {device} one pair's frames already fill the GPU; leave "
                "num_streams=None (or 1)"
            )
        self.streams = streams
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # frame sizes are constant: autotune once per shape
        self.model = model.to(device).to(memory_format=torch.channels_last if self.cuda else torch.contiguous_format)
        self.margin = MARGIN if model.warp == "exact" else 0
        self.model.eval()
        nets = load_nets(backend, self.model, device, streams)  # where the U-Nets run; None: the fastest installed
        self.nets = replace(
            nets,
            flow=_timed(f"network: flow U-Net ({nets.backend})", nets.flow),
            interp_rest=_timed(f"network: interpolation U-Net ({nets.backend})", nets.interp_rest),
        )
        self.device = device
        self.fp16 = fp16
        self.batch_size = batch_size
        self.tile = tile
        self.flow: FlowSource = flow
        # Splatted flows to t (:mod:`.splatting`) by default with DIS flows only: the flow net's weights
        # (the original checkpoint's above all) go on with the paper's estimate, which they were trained with.
        self.splat = flow == "dis" if splat is None else splat
        # The final warps bicubic with DIS flows (:data:`.warp.Resample`); the flow network's path (the original
        # checkpoint's above all) stays bilinear, as it was.
        self.resample: Resample = ("bicubic" if flow == "dis" else "bilinear") if resample is None else resample
        try:
            self.scale = check_scale(scale)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        self._lock = threading.BoundedSemaphore(streams)
        self._trim_lock = threading.Lock()
        # DIS flows by the pictures they join: with quadratic motion a pair's flows to its neighbours are
        # the neighbouring pairs' own flows, so each is computed once, two a pair as with linear motion. A
        # few flows cover in-order requests; the latest is kept whatever its size.
        self._dis_cache: ComputeOnceCache[tuple[bytes, bytes], np.ndarray] = ComputeOnceCache(
            _DIS_CACHE_BYTES, lambda flow: flow.nbytes
        )
        self._copy_stream = torch.cuda.Stream(device) if self.cuda else None
        self._trim = CreepTrim()

    def _budget(self) -> float:
        # From the device's total memory, not what is free right now: the batch (and so the rounding of
        # every frame) must not depend on what else happens to run. An out-of-memory error still backs off.
        if self.cuda:
            return float(torch.cuda.get_device_properties(self.device).total_memory / 2)
        return _CPU_BUDGET

    def _bytes_per_sample(self, height: int, width: int) -> float:
        return _BYTES_PER_PIXEL * height * width * self.model.width * (0.5 if self.fp16 else 1.0)

    def auto_batch_size(self, height: int, width: int) -> int:
        """Interpolated frames per forward: on CUDA as many as fit, on the CPU one.

        A CPU gains nothing from batching: measured at 448×256 on 2 cores, batches of 7 ran 25% slower
        than 7 single forwards (the batch's activations no longer fit the caches). A GPU needs the batch
        to fill its cores.
        """
        if not self.cuda:
            return 1
        return max(1, int(self._budget() // max(self._bytes_per_sample(height, width), 1.0)))

    def auto_tile(self, height: int, width: int) -> int | None:
        """None when one sample of this size fits the memory budget, else the largest tile side that does."""
        if self._bytes_per_sample(height, width) <= self._budget():
            return None
        side = int((self._budget() / self._bytes_per_sample(1, 1)) ** 0.5) // MULTIPLE * MULTIPLE
        return max(side, _MIN_TILE)

    def upload(self, frame0: np.ndarray | Tensor, frame1: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """Both frames on the device as (1, 3, H', W') float32, padded (:meth:`unpad` crops results back)."""
        if frame0.shape != frame1.shape or len(frame0.shape) != 3 or frame0.shape[0] != 3:
            raise EngineError(f"frames must both be (3, H, W); got {tuple(frame0.shape)} and {tuple(frame1.shape)}")
        return self._upload_pair(torch.as_tensor(frame0), torch.as_tensor(frame1))

    def flows(self, frame0: np.ndarray | Tensor, frame1: np.ndarray | Tensor) -> tuple[Tensor, Tensor] | None:
        """``(F01, F10)`` from DIS on the device, each (1, 2, H', W') padded like the frames; None for the net.

        DIS runs on the picture itself, not on the padding (training computed it on whole frames), and the
        flows are padded by replication as the frames are. On the CPU, in the calling thread: VapourSynth's
        threads compute several pairs' flows at once while the network runs another.
        """
        if self.flow != "dis":
            return None
        return self._flows(_picture(frame0), _picture(frame1))

    def _flows(self, picture0: tuple[bytes, np.ndarray], picture1: tuple[bytes, np.ndarray]) -> tuple[Tensor, Tensor]:
        f01, f10 = self._dis(picture0, picture1), self._dis(picture1, picture0)
        return self._upload_pair(torch.from_numpy(f01), torch.from_numpy(f10))

    def _dis(self, source: tuple[bytes, np.ndarray], target: tuple[bytes, np.ndarray]) -> np.ndarray:
        """DIS from one picture to another (each with its digest), seeded by a global shift when the pair pans,
        shrunk with the networks (:func:`.sizing.flow_scale`, :func:`.flow.dis_scaled`), once for every thread
        and pair asking."""

        def compute() -> np.ndarray:
            with timed("motion: DIS"):
                height, width = source[1].shape
                scale = self.scale_for(*padded_size(height, width, self.margin))
                return dis_scaled(source[1], target[1], flow_scale(scale))

        return self._dis_cache.get((source[0], target[0]), compute)

    def _accelerations(
        self,
        picture0: tuple[bytes, np.ndarray],
        picture1: tuple[bytes, np.ndarray],
        flows: tuple[Tensor, Tensor],
        before: np.ndarray | Tensor | None,
        after: np.ndarray | Tensor | None,
        spacing: tuple[float, float],
    ) -> tuple[Tensor, Tensor] | None:
        """``(A0, A1)`` for quadratic motion (:func:`.motion.accelerations`), padded like the flows; None
        without both neighbours (the test that keeps an acceleration needs both ends)."""
        if before is None or after is None:
            return None
        f0m, f12 = self._dis(picture0, _picture(before)), self._dis(picture1, _picture(after))
        outward = self._upload_pair(torch.from_numpy(f0m), torch.from_numpy(f12))
        return accelerations(*flows, *outward, self.model.warp, spacing)

    def _upload_pair(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        with timed("copies: upload and pad"):
            return self._upload_pair_now(a, b)

    def _upload_pair_now(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        pair = torch.stack([a, b])
        if not self.cuda:
            padded = pad(pair.to(torch.float32), self.margin)
            return padded[0:1], padded[1:2]
        assert self._copy_stream is not None
        with torch.cuda.stream(self._copy_stream):
            on_device = pair.pin_memory().to(self.device, non_blocking=True)
            padded = pad(on_device.to(torch.float32), self.margin).contiguous(memory_format=torch.channels_last)
        torch.cuda.current_stream(self.device).wait_stream(self._copy_stream)
        return padded[0:1], padded[1:2]

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """The network's turn: ``streams`` pairs' forwards at a time (each on its share of the cores,
        :func:`.parallel.share_cores`); the wait is timed."""
        with timed("waiting for the network (another pair's turn)"):
            self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    def unpad(self, x: Tensor, height: int, width: int) -> Tensor:
        """The ``height`` × ``width`` picture inside frames padded by :meth:`upload`."""
        m = self.margin
        return x[..., m : m + height, m : m + width]

    def inference(self) -> contextlib.ExitStack:
        """The context every forward on this engine runs in: no autograd, fp16 autocast when enabled."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16))
        return stack

    def forward_pair(
        self,
        x0: Tensor,
        x1: Tensor,
        times: Sequence[float],
        batch: int | None = None,
        flows: tuple[Tensor, Tensor] | None = None,
        accel: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The network alone: frames at ``times`` from uploaded frames, (n, 3, H', W') on the device, and
        their confidence and the trust in their motion (n, 2, H', W') (:func:`.confidence.confidence_at`).

        ``flows`` (from :meth:`flows`) replace the flow net's; ``accel`` (from :meth:`accelerations`) adds
        quadratic motion.

        Flow and every other t-independent part once (:meth:`SuperSloMo.prepare`), then the times in
        batches of ``batch`` (default: ``batch_size`` or what fits). Frames too large for the device
        go through overlapping tiles (``tile``, or automatically); an out-of-memory error (CUDA) halves
        the batch, then the tile, and tries again instead of failing.
        """
        h, w = x0.shape[-2:]
        batch = batch or self.batch_size or self.auto_batch_size(h, w)
        tile = self.tile or self.auto_tile(h, w)
        scale = self.scale_for(h, w)  # the whole frame's, for its tiles too
        while True:
            try:
                if tile is None or (tile >= h and tile >= w):
                    return self._forward_whole(x0, x1, times, batch, flows, accel, scale)
                return self._forward_tiled(x0, x1, times, batch, tile, flows, accel, scale)
            except torch.OutOfMemoryError:  # raised by CUDA; the CPU has no such recoverable error
                if batch == 1 and tile == _MIN_TILE:
                    raise
                if self.cuda:
                    torch.cuda.empty_cache()
                if batch > 1:
                    batch //= 2
                else:
                    tile = max(_MIN_TILE, (min(tile or max(h, w), max(h, w)) // 2) // MULTIPLE * MULTIPLE)

    def _forward_whole(
        self,
        x0: Tensor,
        x1: Tensor,
        times: Sequence[float],
        batch: int,
        flows: tuple[Tensor, Tensor] | None,
        accel: tuple[Tensor, Tensor] | None = None,
        scale: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Frames at ``times`` and their confidence in one pass; with ``scale`` below 1 the networks (and the
        confidence) run on smaller copies, and only the final warps and blend at full size (:meth:`blend_at`)."""
        model = self.model
        full = (x0.shape[-2], x0.shape[-1])
        size = self.network_size(*full, scale)
        small = size != full
        out = torch.empty((len(times), *x0.shape[1:]), dtype=torch.float32, device=self.device)
        confidence = torch.empty((len(times), 2, *full), dtype=torch.float32, device=self.device)
        with self.inference():
            i0, i1 = model.normalize(x0), model.normalize(x1)
            with timed("network: per pair (first convolution, splat weights)"):
                s0, s1, flows, accel = (i0, i1, flows, accel) if not small else shrunk(size, i0, i1, flows, accel)
                pair = model.prepare(s0, s1, flows, self.nets.flow, accel, self.splat)
            with timed("confidence"):
                trust = flow_trust(pair.f01, pair.f10, model.warp)
            for start in range(0, len(times), batch):
                n = len(times[start : start + batch])
                t = torch.tensor(times[start : start + n], dtype=torch.float32, device=self.device)
                with timed("network: per t (splatting, warps, blend)"):
                    resample = "bilinear" if small else self.resample  # the small frame is not shown
                    synthesis = model.synthesize_prepared_parts(pair, t, self.nets.interp_rest, resample)
                    frame = model.blend_at(i0, i1, synthesis, self.resample) if small else synthesis.frame
                    torch.clamp(frame.float() + model.mean, 0, 1, out=out[start : start + n])
                with timed("confidence"):
                    trusted = confidence_at(synthesis, trust, model.warp)
                    if small:
                        trusted = F.interpolate(trusted, size=full, mode="bilinear", align_corners=False)
                    confidence[start : start + n] = trusted
        return out, confidence

    def scale_for(self, height: int, width: int) -> float:
        """The networks' share of the size for padded frames of ``height`` × ``width``: ``scale``, or when it is
        None the frame size's (:func:`.sizing.auto_scale`)."""
        return auto_scale(height, width) if self.scale is None else self.scale

    def network_size(self, height: int, width: int, scale: float) -> tuple[int, int]:
        """The networks' size for padded frames (or tiles) of ``height`` × ``width`` at ``scale``."""
        return network_size(height, width, scale)

    def _forward_tiled(
        self,
        x0: Tensor,
        x1: Tensor,
        times: Sequence[float],
        batch: int,
        tile: int,
        flows: tuple[Tensor, Tensor] | None,
        accel: tuple[Tensor, Tensor] | None = None,
        scale: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Overlapping tiles, each a whole Super SloMo pass (:func:`.tiles.forward_tiled`) at the frame's ``scale``."""

        run: TilePass = lambda a, b, f, acc: self._forward_whole(a, b, times, batch, f, acc, scale)  # noqa: E731
        return forward_tiled(run, x0, x1, len(times), tile, flows, accel)

    def interpolate(
        self,
        frame0: np.ndarray | Tensor,
        frame1: np.ndarray | Tensor,
        times: Sequence[float],
        before: np.ndarray | Tensor | None = None,
        after: np.ndarray | Tensor | None = None,
        spacing: tuple[float, float] = (1.0, 1.0),
    ) -> Tensor:
        """The frames of :meth:`interpolate_with_confidence` alone."""
        return self.interpolate_with_confidence(frame0, frame1, times, before, after, spacing)[0]

    def interpolate_with_confidence(
        self,
        frame0: np.ndarray | Tensor,
        frame1: np.ndarray | Tensor,
        times: Sequence[float],
        before: np.ndarray | Tensor | None = None,
        after: np.ndarray | Tensor | None = None,
        spacing: tuple[float, float] = (1.0, 1.0),
    ) -> tuple[Tensor, Tensor]:
        """Frames at ``times`` between ``frame0`` and ``frame1``, float32 (len(times), 3, H, W), and their
        confidence, float32 (len(times), H, W) in [0, 1] (:mod:`.confidence`), both on the CPU.

        With ``fallback`` on, a frame whose motion is not trusted is the plain blend, and its confidence 0;
        with ``fallback_pixels``, the frames have moved toward the blend where confidence is low. ``before``
        and ``after``, the frames
        ``spacing`` = (τ0, τ1) pair intervals before ``frame0`` and after ``frame1`` (one each at a constant
        rate), give quadratic motion with DIS flows (:func:`.motion.accelerations`); without both, or with the
        flow net, the paper's linear motion. A given (pair, neighbours, times) always runs in the same
        batches, so results never depend on which thread asked first.
        """
        h, w = frame0.shape[1:]
        if not times:
            return torch.empty((0, 3, h, w), dtype=torch.float32), torch.empty((0, h, w), dtype=torch.float32)
        x0, x1 = self.upload(frame0, frame1)
        flows = accel = None
        if self.flow == "dis":  # outside the lock: DIS of one pair overlaps another's forward
            pictures = _picture(frame0), _picture(frame1)  # once each, for the flows and the accelerations
            flows = self._flows(*pictures)
            accel = self._accelerations(*pictures, flows, before, after, spacing)
        with self._turn():
            # Checked after every pair (reading the resident set costs microseconds), trimmed only on creep.
            with self._trim_lock:
                self._trim()
            frames, confidence = (
                self.unpad(x, h, w) for x in self.forward_pair(x0, x1, times, flows=flows, accel=accel)
            )
            if self.fallback > 0 or self.fallback_pixels:
                with torch.inference_mode(), timed("fallback to blend"):
                    t = torch.tensor(times, dtype=torch.float32, device=self.device)
                    ends = self.unpad(x0, h, w), self.unpad(x1, h, w)
                    frames, confidence = fall_back(frames, confidence, *ends, t, self.fallback, self.fallback_pixels)
            done = torch.cuda.Event() if self.cuda else None
            if done is not None:
                done.record()
        if done is None:
            with timed("copies: crop, finite check"):
                return _finite(frames.contiguous(), self.nets.backend), confidence[:, 0].contiguous()
        # Download outside the lock: the next pair's forward overlaps this copy.
        hosts = [torch.empty(x.shape, dtype=torch.float32, pin_memory=True) for x in (frames, confidence[:, 0])]
        assert self._copy_stream is not None
        with torch.inference_mode(), torch.cuda.stream(self._copy_stream):
            self._copy_stream.wait_event(done)
            for host, x in zip(hosts, (frames, confidence[:, 0]), strict=True):
                host.copy_(x, non_blocking=True)
        self._copy_stream.synchronize()
        return _finite(hosts[0], self.nets.backend), hosts[1]


def _timed(stage: str, run: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def timed_run(x: Tensor) -> Tensor:
        with timed(stage):
            return run(x)

    return timed_run


def _finite(frames: Tensor, backend: str) -> Tensor:
    """``frames``, or an EngineError when the network gave NaN or infinite values (shown, they are solid green)."""
    if not bool(torch.isfinite(frames).all()):
        raise EngineError(
            f"the network's output holds NaN or infinite values on backend={backend!r}: the weights are damaged "
            "(check them with vs-superslomo info WEIGHTS) or the backend miscomputes (try backend='torch')"
        )
    return frames
