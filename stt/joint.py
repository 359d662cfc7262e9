"""The decoder+joint session, run over windows of encoder frames without per-step allocation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.contract import ModelShape

WINDOW = 8
"""Frames evaluated per call. A blank leaves the prediction net's state alone, so one call serves every
frame the decoder visits until it emits a token; the joint's weights are read once for all of them."""
WINDOW_COST = 1.4
"""A window's call cost against one frame's: 2.6 vs 1.9 ms on the real-size joint (640 x 8,198, 2 threads)."""


class JointRunner:
    """Runs `decoder_joint` with I/O binding on windows of frames, or on single frames when windows do not pay.

    The encoder output is laid out once as overlapping [channels, WINDOW] tiles on the session's
    device (and as single frames), and each call binds a pointer to one tile. Prediction-net states
    live in two buffer pairs on the device and alternate: a call reads one pair and writes the other,
    so a committed state is never copied. Only the logits come back to the host.

    A window costs more than one frame (WINDOW_COST) and pays only when the decoder visits its later
    frames before emitting a token. The runner follows how often a window would serve the next visit
    and takes the cheaper way per visited frame, with some hysteresis (ONNX Runtime's calls slow down
    for a moment after the input shape changes); the logits of a frame are the same either way (fp32),
    so the tokens do not depend on the choice.
    """

    def __init__(self, session: ort.InferenceSession, shape: ModelShape, device: str, window: int = WINDOW) -> None:
        self._session = session
        self._device = "cuda" if device in ("cuda", "tensorrt") else "cpu"
        self._channels = shape.encoder_channels
        self._window = window
        width = shape.joint_width or self._probe_width(shape)
        self._block = np.zeros((1, window, 1, width), dtype=np.float32)
        self._rows = self._block.reshape(window, width)
        self._targets = np.zeros((1, 1), dtype=np.int32)
        self._target_length = np.ones((1,), dtype=np.int32)
        self._prednet_lengths = np.zeros((1,), dtype=np.int32)
        self._state_shape = [shape.state_layers, 1, shape.state_hidden]
        # Each buffer is allocated by ONNX Runtime: wrapping one numpy array would make them share memory.
        self._states = [
            tuple(
                ort.OrtValue.ortvalue_from_shape_and_type(self._state_shape, np.float32, self._device, 0) for _ in "hc"
            )
            for _ in range(2)
        ]
        # [window width][state pair]
        self._bindings = {w: [self._make_binding(src, dst, w) for src, dst in ((0, 1), (1, 0))] for w in {1, window}}
        self._tiles: dict[int, ort.OrtValue | npt.NDArray[np.float32]] = {}
        self._tile_ptr: dict[int, int] = {}
        self._encoded = np.zeros((self._channels, 0), dtype=np.float32)
        self._cached: tuple[int, int, int, int] | None = None  # (state pair, last token, first frame, width)
        self._virtual: tuple[int, int, int] | None = None  # where a window would have started: (pair, token, frame)
        self._hit_rate = 0.5
        self._width = window

    @property
    def width(self) -> int:
        """Joint output width: tokens incl. blank plus durations."""
        return int(self._block.shape[-1])

    def _probe_width(self, shape: ModelShape) -> int:
        zeros = np.zeros((shape.state_layers, 1, shape.state_hidden), dtype=np.float32)
        out = self._session.run(
            ["outputs"],
            {
                "encoder_outputs": np.zeros((1, shape.encoder_channels, 1), dtype=np.float32),
                "targets": np.zeros((1, 1), dtype=np.int32),
                "target_length": np.ones((1,), dtype=np.int32),
                "input_states_1": zeros,
                "input_states_2": zeros,
            },
        )[0]
        return int(np.asarray(out).shape[-1])

    def _make_binding(self, src: int, dst: int, window: int) -> ort.IOBinding:
        binding = self._session.io_binding()
        binding.bind_input("targets", "cpu", 0, np.int32, [1, 1], self._targets.ctypes.data)
        binding.bind_input("target_length", "cpu", 0, np.int32, [1], self._target_length.ctypes.data)
        binding.bind_ortvalue_input("input_states_1", self._states[src][0])
        binding.bind_ortvalue_input("input_states_2", self._states[src][1])
        shape = [1, window, 1, self._block.shape[-1]]
        binding.bind_output("outputs", "cpu", 0, np.float32, shape, self._block.ctypes.data)
        binding.bind_output("prednet_lengths", "cpu", 0, np.int32, [1], self._prednet_lengths.ctypes.data)
        binding.bind_ortvalue_output("output_states_1", self._states[dst][0])
        binding.bind_ortvalue_output("output_states_2", self._states[dst][1])
        return binding

    def set_frames(self, encoded: npt.NDArray[np.float32]) -> None:
        """Place encoder output [channels, T'] for the following steps (each layout is made when first used)."""
        self._encoded = encoded
        self._tiles.clear()
        self._tile_ptr.clear()
        self._cached = self._virtual = None

    def _pointer(self, width: int) -> int:
        """Where the tiles of `width` frames start on the session's device."""
        pointer = self._tile_ptr.get(width)
        if pointer is not None:
            return pointer
        encoded = self._encoded
        if width == 1:
            tiles = np.ascontiguousarray(encoded.T)
        else:
            frames = encoded.shape[1]
            padded = np.zeros((self._channels, frames + width - 1), dtype=np.float32)
            padded[:, :frames] = encoded
            view = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)
            tiles = np.ascontiguousarray(view.transpose(1, 0, 2))
        if self._device == "cpu":
            self._tiles[width] = tiles
            pointer = tiles.ctypes.data
        else:
            value = ort.OrtValue.ortvalue_from_numpy(tiles, self._device, 0)
            self._tiles[width] = value
            pointer = value.data_ptr()
        self._tile_ptr[width] = pointer
        return pointer

    def reset_state(self) -> int:
        """Zero the state pair 0 and return its index, the start state of a new utterance."""
        zeros = np.zeros(self._state_shape, dtype=np.float32)
        for value in self._states[0]:
            value.update_inplace(zeros)
        self._cached = self._virtual = None
        return 0

    def export_state(self, state: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """A host copy of state pair `state` (LSTM h and c), to resume decoding later."""
        h, c = (np.array(value.numpy(), dtype=np.float32, copy=True) for value in self._states[state])
        return h, c

    def import_state(self, h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]) -> int:
        """Load an exported state into pair 0 and return its index."""
        self._states[0][0].update_inplace(np.ascontiguousarray(h, dtype=np.float32))
        self._states[0][1].update_inplace(np.ascontiguousarray(c, dtype=np.float32))
        self._cached = self._virtual = None
        return 0

    def __call__(self, frame: int, last_token: int, state: int) -> tuple[npt.NDArray[np.float32], int]:
        """Logits of `frame` from state pair `state`, and the index of the pair holding the next state."""
        virtual = self._virtual
        hit = virtual is not None and virtual[:2] == (state, last_token) and 0 <= frame - virtual[2] < self._window
        if self._window > 1:
            self._hit_rate = 0.95 * self._hit_rate + 0.05 * hit
        if not hit:
            self._virtual = (state, last_token, frame)
        cached = self._cached
        if cached is not None and cached[:2] == (state, last_token) and 0 <= frame - cached[2] < cached[3]:
            return self._rows[frame - cached[2]], 1 - state
        width = self._choose_width()
        self._targets[0, 0] = last_token
        binding = self._bindings[width][state]
        binding.bind_input(
            "encoder_outputs",
            self._device,
            0,
            np.float32,
            [1, self._channels, width],
            self._pointer(width) + frame * self._channels * width * 4,
        )
        self._session.run_with_iobinding(binding)
        self._cached = (state, last_token, frame, width)
        return self._rows[0], 1 - state

    def _choose_width(self) -> int:
        """The window while its cost per visited frame, WINDOW_COST × (1 - how often it serves the next visit),
        stays below a single frame's; ±0.05 of hysteresis around the break-even rate."""
        if self._window > 1:
            even = 1 - 1 / WINDOW_COST
            if self._width == 1 and self._hit_rate > even + 0.05:
                self._width = self._window
            elif self._width > 1 and self._hit_rate < even - 0.05:
                self._width = 1
        return self._width
