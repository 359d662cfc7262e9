"""The decoder+joint session run one step at a time, without per-step allocation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.contract import ModelShape

_FLOAT_BYTES = 4


class JointRunner:
    """Runs `decoder_joint` with I/O binding.

    The encoder frames are placed once (on the session's device) and each step binds a pointer to
    one frame. Prediction-net states live in two buffer pairs on the device and alternate: a step
    reads one pair and writes the other, so a committed state is never copied. Only the logits come
    back to the host.
    """

    def __init__(self, session: ort.InferenceSession, shape: ModelShape, device: str) -> None:
        self._session = session
        self._device = "cuda" if device in ("cuda", "tensorrt") else "cpu"
        self._channels = shape.encoder_channels
        width = shape.joint_width or self._probe_width(shape)
        self.logits = np.zeros((1, 1, 1, width), dtype=np.float32)
        self._flat_logits = self.logits.reshape(-1)
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
        self._frames: ort.OrtValue | None = None
        self._frames_host: npt.NDArray[np.float32] | None = None
        self._frame_ptr = 0

    @property
    def width(self) -> int:
        """Joint output width: tokens incl. blank plus durations."""
        return int(self.logits.shape[-1])

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
        binding.bind_output("outputs", "cpu", 0, np.float32, list(self.logits.shape), self.logits.ctypes.data)
        binding.bind_output("prednet_lengths", "cpu", 0, np.int32, [1], self._prednet_lengths.ctypes.data)
        binding.bind_ortvalue_output("output_states_1", self._states[dst][0])
        binding.bind_ortvalue_output("output_states_2", self._states[dst][1])
        return binding

    def set_frames(self, frames: npt.NDArray[np.float32]) -> None:
        """Place encoder frames [T', channels] for the following steps."""
        host = np.ascontiguousarray(frames, dtype=np.float32)
        if self._device == "cpu":
            self._frames_host = host
            self._frame_ptr = host.ctypes.data
        else:
            self._frames = ort.OrtValue.ortvalue_from_numpy(host, self._device, 0)
            self._frame_ptr = self._frames.data_ptr()

    def reset_state(self) -> int:
        """Zero the state pair 0 and return its index, the start state of a new utterance."""
        zeros = np.zeros(self._state_shape, dtype=np.float32)
        for value in self._states[0]:
            value.update_inplace(zeros)
        return 0

    def __call__(self, frame: int, last_token: int, state: int) -> tuple[npt.NDArray[np.float32], int]:
        """Run one step from state pair `state`; return logits and the index of the pair written."""
        binding = self._bindings[state]
        self._targets[0, 0] = last_token
        binding.bind_input(
            "encoder_outputs",
            self._device,
            0,
            np.float32,
            [1, self._channels, 1],
            self._frame_ptr + frame * self._channels * _FLOAT_BYTES,
        )
        self._session.run_with_iobinding(binding)
        return self._flat_logits, 1 - state
