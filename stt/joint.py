"""The decoder+joint session, run over windows of encoder frames without per-step allocation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.contract import ModelShape

WINDOW = 8
"""Frames evaluated per call. A blank leaves the prediction net's state alone, so one call serves every
frame the decoder visits until it emits a token; the joint's weights are read once for all of them."""


class JointRunner:
    """Runs `decoder_joint` with I/O binding on windows of frames.

    The encoder output is laid out once as overlapping [channels, WINDOW] tiles on the session's
    device, and each call binds a pointer to one tile. Prediction-net states live in two buffer
    pairs on the device and alternate: a call reads one pair and writes the other, so a committed
    state is never copied. Only the logits come back to the host.
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
        self._bindings = [self._make_binding(src, dst) for src, dst in ((0, 1), (1, 0))]
        self._tiles: ort.OrtValue | npt.NDArray[np.float32] | None = None
        self._tile_ptr = 0
        self._cached: tuple[int, int, int] | None = None  # (state pair, last token, first frame)

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

    def _make_binding(self, src: int, dst: int) -> ort.IOBinding:
        binding = self._session.io_binding()
        binding.bind_input("targets", "cpu", 0, np.int32, [1, 1], self._targets.ctypes.data)
        binding.bind_input("target_length", "cpu", 0, np.int32, [1], self._target_length.ctypes.data)
        binding.bind_ortvalue_input("input_states_1", self._states[src][0])
        binding.bind_ortvalue_input("input_states_2", self._states[src][1])
        binding.bind_output("outputs", "cpu", 0, np.float32, list(self._block.shape), self._block.ctypes.data)
        binding.bind_output("prednet_lengths", "cpu", 0, np.int32, [1], self._prednet_lengths.ctypes.data)
        binding.bind_ortvalue_output("output_states_1", self._states[dst][0])
        binding.bind_ortvalue_output("output_states_2", self._states[dst][1])
        return binding

    def set_frames(self, encoded: npt.NDArray[np.float32]) -> None:
        """Place encoder output [channels, T'] for the following steps."""
        frames = encoded.shape[1]
        padded = np.zeros((self._channels, frames + self._window - 1), dtype=np.float32)
        padded[:, :frames] = encoded
        tiles = np.ascontiguousarray(
            np.lib.stride_tricks.sliding_window_view(padded, self._window, axis=1).transpose(1, 0, 2)
        )
        if self._device == "cpu":
            self._tiles = tiles
            self._tile_ptr = tiles.ctypes.data
        else:
            value = ort.OrtValue.ortvalue_from_numpy(tiles, self._device, 0)
            self._tiles = value
            self._tile_ptr = value.data_ptr()
        self._cached = None

    def reset_state(self) -> int:
        """Zero the state pair 0 and return its index, the start state of a new utterance."""
        zeros = np.zeros(self._state_shape, dtype=np.float32)
        for value in self._states[0]:
            value.update_inplace(zeros)
        self._cached = None
        return 0

    def export_state(self, state: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """A host copy of state pair `state` (LSTM h and c), to resume decoding later."""
        h, c = (np.array(value.numpy(), dtype=np.float32, copy=True) for value in self._states[state])
        return h, c

    def import_state(self, h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]) -> int:
        """Load an exported state into pair 0 and return its index."""
        self._states[0][0].update_inplace(np.ascontiguousarray(h, dtype=np.float32))
        self._states[0][1].update_inplace(np.ascontiguousarray(c, dtype=np.float32))
        self._cached = None
        return 0

    def __call__(self, frame: int, last_token: int, state: int) -> tuple[npt.NDArray[np.float32], int]:
        """Logits of `frame` from state pair `state`, and the index of the pair holding the next state."""
        cached = self._cached
        if (
            cached is not None
            and cached[0] == state
            and cached[1] == last_token
            and 0 <= frame - cached[2] < self._window
        ):
            return self._rows[frame - cached[2]], 1 - state
        binding = self._bindings[state]
        self._targets[0, 0] = last_token
        binding.bind_input(
            "encoder_outputs",
            self._device,
            0,
            np.float32,
            [1, self._channels, self._window],
            self._tile_ptr + frame * self._channels * self._window * 4,
        )
        self._session.run_with_iobinding(binding)
        self._cached = (state, last_token, frame)
        return self._rows[0], 1 - state
