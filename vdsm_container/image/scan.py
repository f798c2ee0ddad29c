"""Check a layer's tar stream as it is copied, in one pass, in bounded memory.

A layer is checked while its bytes stream from the archive to the private
OCI layout umoci reads (``archive.copy_blob`` feeds ``Scanner.feed``), so
the check costs no second read of the layer.  It parses tar headers itself
(``tarfile`` keeps every member it has seen: a million entries are a
million objects) and keeps nothing per entry, except the names of the
device nodes it is told to drop, which are few and capped.

What it refuses (vdsm's UnsupportedImageFormat, 17, naming the entry):

- names that leave the rootfs: absolute, ``..`` (whiteouts and hard-link
  targets too);
- device nodes outside ``dev/``; under ``dev/`` they are dropped instead
  (``Scanner.dropped``): a rootfs imported from debootstrap has
  ``dev/console``, and runc mounts a tmpfs on /dev anyway;
- entry types umoci would read differently than we do (old GNU sparse,
  volume headers, anything unknown), and bad header checksums, so that the
  stream umoci applies is the one that was checked;
- more bytes or entries than the image limits (``config.ImageLimits``),
  counted over every layer of the image, raised as soon as the stream
  crosses them, before umoci writes anything.

The tar format is POSIX.1-2001 (ustar + pax) with GNU long names, as Go's
archive/tar (umoci's reader) reads it.
"""

from __future__ import annotations

import logging
import zlib

from vdsm_container import errors

log = logging.getLogger("vdsm_container.image")

BLOCK = 512
_MAX_EXTENDED = 1024 * 1024          # a pax or GNU long-name record
_OUT = 1024 * 1024                   # inflated bytes per step
_MAX_DROPPED = 4096                  # device nodes under dev/ in one image

# typeflag -> kind; a kind umoci may create, or an extension header.
_KINDS = {
    b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink",
    b"2": "symlink", b"3": "chr", b"4": "blk", b"5": "dir", b"6": "fifo",
    b"x": "pax", b"g": "paxglobal", b"L": "longname", b"K": "longlink",
}


class LimitExceeded(Exception):
    """Raised inside the scanner; the caller turns it into vdsm's error."""


def _fail(image, reason):
    return errors.UnsupportedImageFormat(reason, image=image)


def _number(field):
    """A numeric header field: octal text, or base-256 (GNU) if the high
    bit of its first byte is set."""
    if field and field[0] & 0x80:
        value = field[0] & 0x3f
        for b in field[1:]:
            value = (value << 8) | b
        if field[0] & 0x40:
            raise ValueError("negative number")
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    return int(text, 8) if text else 0


def _text(field):
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _clean(name):
    """The path a name means in the rootfs ("./a//b/" -> "a/b")."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def leaves_rootfs(name):
    return name.startswith("/") or ".." in name.split("/") or "\0" in name


def _checksum_ok(header):
    try:
        want = _number(header[148:156])
    except ValueError:
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if want == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b
                 for b in header[:148] + header[156:]) + 8 * 32
    return want == signed


def _pax_records(data):
    """Parse "LEN KEY=VALUE\\n" records."""
    records = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise ValueError("bad pax record")
        length = int(data[pos:space])
        if length <= space - pos + 1 or pos + length > len(data):
            raise ValueError("bad pax record length")
        record = data[space + 1:pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq:
            raise ValueError("bad pax record")
        records[key.decode("utf-8", "surrogateescape")] = \
            value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class Totals:
    """What an image's layers add up to, against its limits."""

    def __init__(self, limits):
        self.limits = limits
        self.bytes = 0
        self.entries = 0

    def add(self, size):
        self.entries += 1
        self.bytes += size
        if self.entries > self.limits.max_entries:
            raise LimitExceeded(
                "the image has more than %d entries (limit "
                "max_entries, %s)" % (self.limits.max_entries,
                                      self.limits.ENV["max_entries"]))
        if self.bytes > self.limits.max_bytes:
            raise LimitExceeded(
                "the image expands to more than %d bytes (limit "
                "max_bytes, %s)" % (self.limits.max_bytes,
                                    self.limits.ENV["max_bytes"]))


class Scanner:
    """Feed it a layer blob's bytes, in order; ``close()`` at the end.

    ``media_type`` picks the decompressor, as umoci does.  ``devices`` is
    the image's set of device nodes dropped so far (shared by its layers,
    for hard links to them); ``dropped`` gets this layer's.  With ``out`` (a
    writable file) and ``drop`` (a first pass's ``dropped``) the
    uncompressed stream is written there without those entries: how a layer
    with device nodes under dev/ is rewritten for umoci.
    """

    def __init__(self, image, media_type, totals, devices=None, out=None,
                 drop=None):
        self.image = image
        self.totals = totals
        self.devices = set() if devices is None else devices
        self.dropped = set()
        self._drop = drop or set()
        self._out = out
        if media_type.endswith("+gzip") or media_type.endswith(".gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif media_type.endswith(".tar"):
            self._inflate = None
        else:
            raise _fail(image, "layer media type %r is not supported "
                        "(plain or gzip tar only)" % media_type)
        self._buf = bytearray()
        self._skip = 0          # data bytes of the current entry still due
        self._keep = True       # whether those bytes go to ``out``
        self._ext = None        # [kind, size, data] of an extension record
        self._long = {}         # GNU long name/link for the next header
        self._pax = {}          # pax records for the next header
        self._held = bytearray()  # extension blocks of the next entry
        self._ended = False

    def feed(self, data):
        if self._inflate is None:
            self._consume(data)
            return
        while data:
            try:
                # Bounded output: a small chunk of gzip can be gigabytes.
                chunk = self._inflate.decompress(data, _OUT)
            except zlib.error as e:
                raise _fail(self.image,
                            "layer is not valid gzip: %s" % e) from e
            self._consume(chunk)
            data = self._inflate.unconsumed_tail
            if self._inflate.eof:
                data = self._inflate.unused_data
                if data:    # concatenated gzip members, as Go reads them
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def close(self):
        if self._inflate is not None and not self._inflate.eof:
            raise _fail(self.image, "layer is a truncated gzip stream")
        if not self._ended:
            raise _fail(self.image, "layer is a truncated tar stream (no "
                        "end-of-archive marker)")

    def _emit(self, data):
        if self._out is not None and len(data):
            self._out.write(data)

    def _consume(self, chunk):
        if self._ended:
            self._emit(chunk)       # Go reads no further: nor does umoci
            return
        view = memoryview(chunk)
        pos = 0
        end = len(chunk)
        while pos < end:
            if self._skip:
                n = min(self._skip, end - pos)
                if self._keep:
                    self._emit(view[pos:pos + n])
                self._skip -= n
                pos += n
            elif self._ext is not None:
                pos = self._read_extension(view, pos)
            else:
                take = min(BLOCK - len(self._buf), end - pos)
                if not self._buf and take == BLOCK:
                    header = bytes(view[pos:pos + BLOCK])
                else:
                    self._buf += view[pos:pos + take]
                    if len(self._buf) < BLOCK:
                        return
                    header = bytes(self._buf)
                    self._buf.clear()
                pos += take
                self._header(header)
                if self._ended:
                    self._emit(view[pos:])
                    return

    def _read_extension(self, view, pos):
        kind, size, data = self._ext
        padded = size + (-size % BLOCK)
        take = min(padded - len(data), len(view) - pos)
        data += view[pos:pos + take]
        if len(data) == padded:
            self._ext = None
            self._held += data
            self._apply_extension(kind, bytes(data[:size]))
        return pos + take

    def _apply_extension(self, kind, data):
        try:
            if kind == "longname":
                self._long["path"] = _text(data)
            elif kind == "longlink":
                self._long["linkpath"] = _text(data)
            elif kind == "pax":
                self._pax.update(_pax_records(data))
            elif kind == "paxglobal":
                records = _pax_records(data)
                if set(records) & {"path", "linkpath", "size"}:
                    raise ValueError("a global pax header sets %s"
                                     % sorted(records))
        except ValueError as e:
            raise _fail(self.image, "layer has a bad tar extension header: "
                        "%s" % e) from e

    def _header(self, header):
        if header == _ZERO:
            # End of archive: Go's reader stops here too.
            self._ended = True
            self._emit(self._held)
            self._emit(header)
            return
        if not _checksum_ok(header):
            raise _fail(self.image, "layer is not a readable tar: a header "
                        "has a bad checksum")
        kind = _KINDS.get(header[156:157])
        if kind is None:
            raise _fail(self.image, "layer has a tar entry of type %r, "
                        "which is not supported" % header[156:157])
        try:
            size = _number(header[124:136])
        except ValueError:
            raise _fail(self.image,
                        "layer has a tar header with a bad size") from None
        if kind in ("pax", "paxglobal", "longname", "longlink"):
            if size > _MAX_EXTENDED:
                raise _fail(self.image, "layer has a %d-byte tar extension "
                            "header" % size)
            if len(self._held) > 4 * _MAX_EXTENDED:
                raise _fail(self.image, "layer has a run of tar extension "
                            "headers with no entry")
            self._held += header
            self._ext = [kind, size, bytearray()]
            return
        pax, self._pax = self._pax, {}
        long, self._long = self._long, {}
        name = long.get("path") or pax.get("path") or _name(header)
        link = long.get("linkpath") or pax.get("linkpath") or \
            _text(header[157:257])
        try:
            if "size" in pax:
                size = int(pax["size"])
            expanded = int(pax.get("GNU.sparse.realsize",
                                   pax.get("GNU.sparse.size", size)))
        except ValueError:
            raise _fail(self.image, "layer entry %r has a bad pax size"
                        % name) from None
        if kind == "file" and name.endswith("/") and size:
            # Go reads an old-style file entry named "x/" as a directory,
            # with no data: refuse what the two readers would split apart.
            raise _fail(self.image, "layer entry %r is a file named as a "
                        "directory, with data" % name)
        data_size = 0 if kind in _HEADER_ONLY else size
        drop = self._entry(kind, name, link,
                           expanded if kind == "file" else 0)
        keep = not (drop and _clean(name) in self._drop)
        if keep:
            self._emit(self._held)
            self._emit(header)
        self._held.clear()
        self._skip = data_size + (-data_size % BLOCK)
        self._keep = keep

    def _entry(self, kind, name, link, size):
        """Check one entry; True if it is a device node to drop."""
        try:
            self.totals.add(size)
        except LimitExceeded as e:
            raise _fail(self.image, str(e)) from e
        if leaves_rootfs(name):
            raise _fail(self.image, "layer entry %r leaves the rootfs"
                        % name)
        clean = _clean(name)
        if kind in ("chr", "blk"):
            return self._drop_device(clean, name, "a device node")
        if kind == "hardlink":
            if leaves_rootfs(link):
                raise _fail(self.image, "hard link %r -> %r leaves the "
                            "rootfs" % (name, link))
            if _clean(link) in self.devices:
                return self._drop_device(clean, name, "a hard link to "
                                         "device node %r" % link)
        self.devices.discard(clean)     # a device replaced by a file
        return False

    def _drop_device(self, clean, name, what):
        if not clean.startswith("dev/"):
            raise _fail(self.image, "layer entry %r is %s (device nodes "
                        "are refused outside dev/)" % (name, what))
        if len(self.devices) >= _MAX_DROPPED:
            raise _fail(self.image, "layer has more than %d device nodes "
                        "under dev/" % _MAX_DROPPED)
        if clean not in self.dropped and self._out is None:
            log.info("Image %s: dropping %s, %s: the container gets its "
                     "own /dev", self.image, clean, what)
        self.devices.add(clean)
        self.dropped.add(clean)
        return True


_ZERO = bytes(BLOCK)
_HEADER_ONLY = ("hardlink", "symlink", "chr", "blk", "dir", "fifo")


def _name(header):
    """The header's own name, as Go's reader builds it for its format."""
    name = _text(header[0:100])
    magic, version = header[257:263], header[263:265]
    if magic == b"ustar\0" and version == b"00":
        if header[508:512] == b"tar\0":          # star
            prefix = _text(header[345:476])
        else:
            prefix = _text(header[345:500])
        if prefix:
            name = prefix + "/" + name
    return name
