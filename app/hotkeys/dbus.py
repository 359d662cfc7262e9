"""A small D-Bus client in pure Python: enough to talk to the XDG portals from a thread of our own.

Qt's D-Bus module cannot be used for the GlobalShortcuts portal from Python: PySide6 cannot marshal the portal's
`a(sa{sv})` argument (an array of structures needs a C++ type registered with QtDBus). This module speaks the
D-Bus wire protocol directly over the session bus socket: EXTERNAL authentication, method calls, errors and
signals, with the marshalling of every type except Unix file descriptors. One connection serves one thread;
`send` may also be called from another thread, and `close` from any.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1
BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

_FIXED = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q", "t": "Q", "d": "d", "h": "I"}
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "h": 4, "s": 4, "o": 4, "g": 1}
_ALIGN.update({"a": 4, "(": 8, "{": 8, "v": 1})
_FIELDS = {1: ("path", "o"), 2: ("interface", "s"), 3: ("member", "s"), 4: ("error_name", "s")}
_FIELDS.update({5: ("reply_serial", "u"), 6: ("destination", "s"), 7: ("sender", "s"), 8: ("signature", "g")})
_FIELD_CODES = {name: (code, sig) for code, (name, sig) in _FIELDS.items()}


class DBusError(Exception):
    """A D-Bus error reply, or a connection that failed; `name` is the D-Bus error name when there is one."""

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


class Variant(NamedTuple):
    """A value with the D-Bus signature it is sent as (a `v`)."""

    signature: str
    value: Any


@dataclass
class Message:
    """One D-Bus message; `body` holds the values its signature describes (variants unwrapped on receipt)."""

    type: int
    path: str | None = None
    interface: str | None = None
    member: str | None = None
    error_name: str | None = None
    reply_serial: int | None = None
    destination: str | None = None
    sender: str | None = None
    signature: str = ""
    body: tuple[Any, ...] = ()
    serial: int = 0
    flags: int = 0
    extra: dict[int, Any] = field(default_factory=dict)


# Marshalling.


def split_signature(signature: str) -> list[str]:
    """The complete types of a signature: `sa{sv}(ii)` → [`s`, `a{sv}`, `(ii)`]."""
    types = []
    index = 0
    while index < len(signature):
        end = _type_end(signature, index)
        types.append(signature[index:end])
        index = end
    return types


def _type_end(signature: str, index: int) -> int:
    char = signature[index]
    if char == "a":
        return _type_end(signature, index + 1)
    if char in "({":
        close = ")" if char == "(" else "}"
        depth = 0
        for end in range(index, len(signature)):
            if signature[end] == char:
                depth += 1
            elif signature[end] == close:
                depth -= 1
                if depth == 0:
                    return end + 1
        raise ValueError(f"unbalanced D-Bus signature {signature!r}")
    if char in _ALIGN:
        return index + 1
    raise ValueError(f"unknown D-Bus type {char!r} in {signature!r}")


def _guess_signature(value: Any) -> str:
    if isinstance(value, Variant):
        return "v"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, str):
        return "s"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "d"
    raise TypeError(f"give {value!r} a D-Bus signature with Variant(signature, value)")


class _Writer:
    def __init__(self) -> None:
        self.data = bytearray()

    def pad(self, alignment: int) -> None:
        self.data += b"\0" * (-len(self.data) % alignment)

    def write(self, type_: str, value: Any) -> None:
        code = type_[0]
        self.pad(_ALIGN[code])
        if code in _FIXED:
            self.data += struct.pack("<" + _FIXED[code], value)
        elif code in "so":
            encoded = str(value).encode()
            self.data += struct.pack("<I", len(encoded)) + encoded + b"\0"
        elif code == "g":
            encoded = str(value).encode()
            self.data += struct.pack("<B", len(encoded)) + encoded + b"\0"
        elif code == "v":
            variant = value if isinstance(value, Variant) else Variant(_guess_signature(value), value)
            self.write("g", variant.signature)
            self.write(variant.signature, variant.value)
        elif code == "a":
            element = type_[1:]
            length_at = len(self.data)
            self.data += b"\0\0\0\0"
            self.pad(_ALIGN[element[0]])
            start = len(self.data)
            items = value.items() if element[0] == "{" and isinstance(value, Mapping) else value
            for item in items:
                self.write(element, item)
            struct.pack_into("<I", self.data, length_at, len(self.data) - start)
        elif code in "({":
            members = split_signature(type_[1:-1])
            if len(members) != len(value):
                raise ValueError(f"{value!r} does not fit the D-Bus type {type_}")
            for member, item in zip(members, value, strict=True):
                self.write(member, item)


def marshal(signature: str, values: Sequence[Any]) -> bytes:
    """The body bytes (little-endian) for values of a signature."""
    types = split_signature(signature)
    if len(types) != len(values):
        raise ValueError(f"{len(values)} values for the D-Bus signature {signature!r}")
    writer = _Writer()
    for type_, value in zip(types, values, strict=True):
        writer.write(type_, value)
    return bytes(writer.data)


class _Reader:
    def __init__(self, data: bytes, endian: str, position: int = 0) -> None:
        self.data = data
        self.endian = endian
        self.position = position

    def pad(self, alignment: int) -> None:
        self.position += -self.position % alignment

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(self.endian + fmt, self.data, self.position)[0]
        self.position += struct.calcsize(fmt)
        return value

    def read(self, type_: str) -> Any:
        code = type_[0]
        self.pad(_ALIGN[code])
        if code in _FIXED:
            value = self.unpack(_FIXED[code])
            return bool(value) if code == "b" else value
        if code in "sog":
            length = self.unpack("B" if code == "g" else "I")
            text = self.data[self.position : self.position + length].decode("utf-8", "replace")
            self.position += length + 1
            return text
        if code == "v":
            return self.read(self.read("g"))
        if code == "a":
            length = self.unpack("I")
            element = type_[1:]
            self.pad(_ALIGN[element[0]])
            end = self.position + length
            items = []
            while self.position < end:
                items.append(self.read(element))
            return dict(items) if element[0] == "{" else items
        return tuple(self.read(member) for member in split_signature(type_[1:-1]))


def unmarshal(signature: str, data: bytes, endian: str = "<") -> tuple[Any, ...]:
    """The values of a body."""
    reader = _Reader(data, endian)
    return tuple(reader.read(type_) for type_ in split_signature(signature))


def encode_message(message: Message) -> bytes:
    """A message on the wire."""
    body = marshal(message.signature, message.body) if message.signature else b""
    fields = []
    for name, (code, signature) in _FIELD_CODES.items():
        value = getattr(message, name)
        if value is not None and not (name == "signature" and not value):
            fields.append((code, Variant(signature, value)))
    header = _Writer()
    header.write("y", ord("l"))
    header.write("y", message.type)
    header.write("y", message.flags)
    header.write("y", 1)
    header.write("u", len(body))
    header.write("u", message.serial)
    header.write("a(yv)", fields)
    header.pad(8)
    return bytes(header.data) + body


def message_length(head: bytes) -> int:
    """The whole length of a message from its first 16 bytes."""
    endian = "<" if head[:1] == b"l" else ">"
    body_length, _serial, fields_length = struct.unpack_from(endian + "III", head, 4)
    header = 16 + fields_length
    return int(header + (-header % 8) + body_length)


def decode_message(data: bytes) -> Message:
    """A message from its bytes (exactly one message)."""
    endian = "<" if data[:1] == b"l" else ">"
    reader = _Reader(data, endian)
    reader.position = 1
    kind, flags, _version = reader.unpack("B"), reader.unpack("B"), reader.unpack("B")
    body_length, serial = reader.unpack("I"), reader.unpack("I")
    fields = reader.read("a(yv)")
    reader.pad(8)
    message = Message(type=kind, serial=serial, flags=flags)
    for code, value in fields:
        if code in _FIELDS:
            setattr(message, _FIELDS[code][0], value)
        else:
            message.extra[code] = value
    body = data[reader.position : reader.position + body_length]
    message.body = unmarshal(message.signature, body, endian) if message.signature else ()
    return message


# The connection.


def session_bus_address(environ: Mapping[str, str] | None = None) -> str | None:
    """DBUS_SESSION_BUS_ADDRESS, else the usual $XDG_RUNTIME_DIR/bus socket when it exists."""
    env = os.environ if environ is None else environ
    address = env.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / "bus").exists():
        return f"unix:path={Path(runtime) / 'bus'}"
    return None


def _unix_socket_paths(address: str) -> list[str]:
    """Socket addresses (abstract ones start with a NUL) of the unix: entries of a D-Bus address."""
    paths = []
    for entry in address.split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        keys = dict(item.partition("=")[::2] for item in params.split(",") if item)
        if "path" in keys:
            paths.append(urllib.parse.unquote(keys["path"]))
        elif "abstract" in keys:
            paths.append("\0" + urllib.parse.unquote(keys["abstract"]))
    return paths


class Connection:
    """A connection to a message bus (the session bus unless an address is given)."""

    def __init__(self, address: str | None = None, timeout: float = 5.0) -> None:
        address = address or session_bus_address()
        if not address:
            raise DBusError("NoBus", "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
        self.timeout = timeout
        self._serials = itertools.count(1)
        self._send_lock = threading.Lock()
        self._buffer = b""
        self._inbox: deque[Message] = deque()
        self._closed = False
        self.sock = self._connect(address)
        try:
            self._authenticate()
            self.unique_name: str = self.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello").body[0]
        except BaseException:
            self.sock.close()
            raise

    def _connect(self, address: str) -> socket.socket:
        errors = []
        for path in _unix_socket_paths(address):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(path)
            except OSError as exc:
                sock.close()
                errors.append(f"{path.lstrip(chr(0))}: {exc}")
                continue
            return sock
        reason = "; ".join(errors) or "no unix socket in the address"
        raise DBusError("NoBus", f"cannot connect to the D-Bus session bus {address}: {reason}")

    def _authenticate(self) -> None:
        uid = str(os.getuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = self.sock.recv(256)
            if not chunk:
                break
            line += chunk
        if not line.startswith(b"OK "):
            raise DBusError("AuthFailed", f"the session bus refused us: {line.decode(errors='replace').strip()}")
        self.sock.sendall(b"BEGIN\r\n")
        self.sock.settimeout(None)

    def fileno(self) -> int:
        """The socket, for select()."""
        return self.sock.fileno()

    def send(self, message: Message) -> int:
        """Send a message; its serial."""
        with self._send_lock:
            message.serial = next(self._serials)
            self.sock.sendall(encode_message(message))
        return message.serial

    def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        *,
        signature: str = "",
        body: Sequence[Any] = (),
        timeout: float | None = None,
    ) -> Message:
        """Call a method and wait for its reply; DBusError for an error reply or no reply in time.

        Messages that arrive meanwhile are kept for `receive`.
        """
        serial = self.send(
            Message(
                METHOD_CALL,
                path=path,
                interface=interface,
                member=member,
                destination=destination,
                signature=signature,
                body=tuple(body),
            )
        )
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            message = self._read(deadline)
            if message is None:
                raise DBusError("NoReply", f"no reply to {interface}.{member} from {destination}")
            if message.reply_serial == serial and message.type in (METHOD_RETURN, ERROR):
                if message.type == ERROR:
                    text = message.body[0] if message.body and isinstance(message.body[0], str) else ""
                    raise DBusError(message.error_name or "Error", text)
                return message
            self._inbox.append(message)

    def add_match(self, rule: str) -> None:
        """Ask the bus for the signals a match rule describes."""
        self.call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch", signature="s", body=(rule,))

    def receive(self, timeout: float | None = None) -> Message | None:
        """The next message not yet handed out, waiting at most `timeout` seconds (None: until one comes)."""
        if self._inbox:
            return self._inbox.popleft()
        return self._read(None if timeout is None else time.monotonic() + timeout)

    def _read(self, deadline: float | None) -> Message | None:
        while True:
            if len(self._buffer) >= 16:
                length = message_length(self._buffer[:16])
                if len(self._buffer) >= length:
                    data, self._buffer = self._buffer[:length], self._buffer[length:]
                    return decode_message(data)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                if not select.select([self.sock], [], [], remaining)[0]:
                    return None
                chunk = self.sock.recv(65536)
            except (OSError, ValueError) as exc:  # ValueError: the socket was closed
                raise DBusError("Disconnected", f"the D-Bus connection closed: {exc}") from exc
            if not chunk:
                raise DBusError("Disconnected", "the D-Bus connection closed")
            self._buffer += chunk

    def shutdown(self) -> None:
        """End the connection from any thread: a thread waiting in `receive` or `call` gets DBusError."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Disconnect and free the socket (by the thread that reads, or once it has ended)."""
        if self._closed:
            return
        self._closed = True
        self.shutdown()
        self.sock.close()
