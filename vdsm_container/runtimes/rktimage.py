"""The ACI a rkt VM runs, copied off its image volume.

An ACI is a tar of ``manifest`` and ``rootfs/`` (appc spec, "Image
Archives"), plain or compressed with gzip, bzip2 or xz; Debian's ``actool
build`` writes it gzipped.  The image volume is rounded up to whole extents
and its tail may be garbage, which rkt would read as part of the archive, so
the copy stops where the archive ends: the end of the compressed stream
(the decompressor says where), or of the tar's end-of-archive blocks.

A signed image travels with its signature: rkt verifies ``X.aci`` against
``X.aci.asc`` beside it (an armored detached GPG signature, as ``gpg
--armor --detach-sign`` and rkt's documentation's signing guide make it),
trusted through rkt's trust store (``rkt trust``).  A volume holds one
file, so a signed image's volume is a plain tar of the two files,
``NAME.aci`` and ``NAME.aci.asc``, which an ACI (whose first member is
``manifest`` or ``rootfs``) can't be mistaken for.
"""

from __future__ import annotations

import bz2
import shutil
import lzma
import tarfile
import zlib

from vdsm_container import errors

CHUNK = 1024 * 1024


def _decompressor(head):
    if head.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31)
    if head.startswith(b"BZh"):
        return bz2.BZ2Decompressor()
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    return None


def _compressed_end(f, dec):
    """The length of the compressed stream at the start of ``f``, checking
    that it holds a tar (its first member's header)."""
    end = 0
    head = b""
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            raise ValueError("the compressed archive is truncated")
        data = dec.decompress(chunk)
        if len(head) < tarfile.BLOCKSIZE:
            head += data[:tarfile.BLOCKSIZE - len(head)]
        if dec.eof:
            end += len(chunk) - len(dec.unused_data)
            break
        end += len(chunk)
    tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    return end


def _tar_end(f):
    with tarfile.open(fileobj=f, mode="r:") as t:
        for _ in t:
            pass
        return t.offset


def _signed_pair(src, dest):
    """If volume ``src`` holds ``NAME.aci`` and ``NAME.aci.asc``, copy them
    to ``dest`` and ``dest.asc`` and return True; False if it holds an
    ACI itself."""
    try:
        with open(src, "rb") as f, tarfile.open(fileobj=f, mode="r:") as t:
            first = t.next()
            if first is None or not first.name.endswith((".aci",
                                                         ".aci.asc")):
                return False
            found = {}
            member = first
            while member is not None:
                if member.isfile() and member.name.endswith(".aci.asc"):
                    found["asc"] = member
                elif member.isfile() and member.name.endswith(".aci"):
                    found["aci"] = member
                member = t.next()
            if set(found) != {"aci", "asc"}:
                raise ValueError("a signed image holds NAME.aci and "
                                 "NAME.aci.asc, this one %s"
                                 % sorted(m.name for m in found.values()))
            for key, target in (("aci", dest), ("asc", dest + ".asc")):
                with t.extractfile(found[key]) as data, \
                        open(target, "wb") as out:
                    shutil.copyfileobj(data, out, CHUNK)
            return True
    except tarfile.TarError:
        return False


def copy_aci(src, dest):
    """Copy the ACI at the start of volume ``src`` to ``dest``, up to the
    archive's end, and its signature, if the volume carries one, to
    ``dest.asc``; True if it did.  UnsupportedImageFormat if the volume
    holds no ACI."""
    try:
        if _signed_pair(src, dest):
            return True
        with open(src, "rb") as f:
            dec = _decompressor(f.read(6))
            f.seek(0)
            end = _compressed_end(f, dec) if dec else _tar_end(f)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError,
            tarfile.TarError) as e:
        raise errors.UnsupportedImageFormat(
            "not an ACI archive: %s" % e, image=src) from e
    with open(src, "rb") as f, open(dest, "wb") as out:
        left = end
        while left:
            chunk = f.read(min(left, CHUNK))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
        if dec is None:
            out.write(b"\0" * 1024)
    return False
