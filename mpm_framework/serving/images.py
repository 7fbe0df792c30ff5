"""Images a client sends: ``data:`` URLs (or files under ``--allow-dir``) -> RGB
images under byte and pixel limits, and the bounded cache of their encodings.

A run folder and a request are data: the server never fetches a URL, never
reads a file outside the allowed folders, and checks an image's pixel count
from its header before decoding it (a small PNG can declare gigapixels).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import APIError, bad_request

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int | None = None  # None: mpm_framework.imaging's limit (MPM_MAX_IMAGE_PIXELS)
    allow_dirs: tuple[Path, ...] = field(default_factory=tuple)


def _too_big(size: int, limits: ImageLimits, param: str) -> APIError:
    return APIError(400, f"the image is {size} bytes, more than the limit of {limits.max_bytes} "
                    "bytes (--max-image-bytes)", param=param, code="image_too_large")


def _from_data_url(url: str, limits: ImageLimits, param: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:"):
        raise bad_request("a data URL must look like data:image/png;base64,<data>", param=param)
    media = header[5:].split(";")
    if not media[0].startswith("image/"):
        raise bad_request(f"the data URL holds '{media[0] or 'text/plain'}', not an image", param=param)
    if "base64" not in media[1:]:
        raise bad_request("only base64 data URLs are accepted (data:image/...;base64,...)", param=param)
    estimate = len(payload) * 3 // 4  # before decoding: refuse without allocating the bytes
    if estimate > limits.max_bytes + 3:
        raise _too_big(estimate, limits, param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("the data URL's base64 payload is not valid base64", param=param) from None
    if len(data) > limits.max_bytes:
        raise _too_big(len(data), limits, param)
    return data


def _from_path(url: str, limits: ImageLimits, param: str) -> bytes:
    raw = unquote(urlparse(url).path) if url.startswith("file:") else url
    if not limits.allow_dirs:
        raise bad_request("local image paths are not accepted: send the image as a data: URL "
                          "(or start the server with --allow-dir DIR)", param=param)
    try:
        path = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        raise bad_request("invalid image path", param=param) from None
    if not any(path.is_relative_to(d) for d in limits.allow_dirs):
        raise bad_request("the image path is outside the folders allowed with --allow-dir", param=param)
    if not path.is_file():
        raise bad_request("image file not found", param=param)
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _too_big(size, limits, param)
    return path.read_bytes()


def read_image_url(url: str, limits: ImageLimits, param: str = "image_url") -> bytes:
    """The image bytes an ``image_url`` names, or a 400 saying why not."""
    if not isinstance(url, str) or not url:
        raise bad_request("image_url.url must be a non-empty string", param=param)
    scheme = url.split(":", 1)[0].lower() if ":" in url[:12] else ""
    if scheme in ("http", "https", "ftp"):
        raise bad_request("remote image URLs are not fetched by this server: send the image as a "
                          "data:image/...;base64,... URL", param=param, code="remote_url_rejected")
    if scheme == "data":
        return _from_data_url(url, limits, param)
    if scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):
        return _from_path(url, limits, param)
    raise bad_request(f"unsupported image URL scheme '{scheme}:'", param=param)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Sent(io.BytesIO):
    """Image bytes from a request; named that way in error messages."""

    def __str__(self) -> str:
        return "(sent in the request)"

    __repr__ = __str__


def open_image(data: bytes, limits: ImageLimits, param: str = "image_url") -> Any:
    """Decode image bytes to an RGB PIL image through :func:`mpm_framework.imaging.load_image`
    (which checks the pixel count from the header before decoding: decompression
    bombs), refusing non-images and truncated files with a 400."""
    from ..errors import DataError
    from ..imaging import load_image

    try:
        return load_image(_Sent(data), max_pixels=limits.max_pixels)
    except DataError as exc:
        message = str(exc)
        too_large = "pixels" in message or "too large" in message
        if "cannot identify image file" in message:
            message = "the data is not an image in a known format"
        elif not too_large:
            message = f"the image is corrupt or truncated ({message.splitlines()[0][:160]})"
        raise bad_request(message, param=param, code="image_too_large" if too_large else "invalid_image") from None


class EncodingCache:
    """Image features by content hash, least recently used dropped first once the
    tensors hold more than ``max_bytes``. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _size(tensor: Any) -> int:
        return int(tensor.numel() * tensor.element_size())

    def get(self, key: str) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, tensor: Any) -> None:
        size = self._size(tensor)
        with self._lock:
            if key in self._items:
                self.bytes -= self._size(self._items.pop(key))
            if size > self.max_bytes:
                return  # larger than the whole cache: not kept
            self._items[key] = tensor
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= self._size(old)

    def __len__(self) -> int:
        return len(self._items)
