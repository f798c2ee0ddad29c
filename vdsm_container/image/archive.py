"""The image archive on a volume (or an OCI layout directory), read lazily.

An image reaches the host as a raw volume holding a tar archive: an OCI image
archive (``skopeo copy ... oci-archive:``) or a docker-archive (``docker
save``).  vdsm rounds volumes up, and a block volume's tail after the archive
may be zeros or garbage, so the archive is read up to its end-of-archive
marker and the volume size is never trusted.

Opening costs only the tar headers (``tarfile`` seeks over member data), so
a start from the cache does not depend on the image's size; members are then
read by name: small JSON documents whole, blobs streamed to a file with
their digest checked on the way (``copy_blob``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import tarfile
import threading

from vdsm_container import errors
from vdsm_container.image import disk

SMALL = 4 * 1024 * 1024         # index, manifests and configs are tiny
MAX_MEMBERS = 100000            # an image archive holds blobs, not files
CHUNK = 1024 * 1024


def fail(path, reason):
    return errors.UnsupportedImageFormat(reason, image=path)


def no_space(where, what):
    """vdsm's error for a full storage filesystem, naming it."""
    return errors.CannotCreateVM(
        "no space left on the storage filesystem of %s while %s: free "
        "space there, or move VDSM_CONTAINER_STORAGE_DIR" % (where, what))


class Source:
    """The archive (or layout directory) at ``path``."""

    def __init__(self, path):
        self.path = path
        self._tar = None
        self._file = None
        self._members = {}
        self._file = disk.open_image(path)
        if self._file is None:      # an OCI layout directory
            return
        try:
            # "r:" reads headers only and seeks over member data; it stops
            # at the end-of-archive marker, ignoring whatever follows it.
            self._tar = tarfile.open(fileobj=self._file, mode="r:")
            for count, member in enumerate(self._tar, 1):
                if count > MAX_MEMBERS:
                    raise fail(path, "the archive holds more than %d files: "
                               "not an image archive" % MAX_MEMBERS)
                # Names are only looked up, never used as paths: content is
                # copied to paths we build, so "../x" can't escape.
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if member.isfile():
                    self._members[name] = member
            self._tar.members = []      # we keep our own, files only
        except (tarfile.TarError, EOFError, OSError) as e:
            self.close()
            raise fail(path, "not a readable image archive: %s" % e) from e
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def has(self, name):
        if self._tar is None:
            return os.path.isfile(os.path.join(self.path, name))
        return name in self._members

    def size(self, name):
        if self._tar is None:
            return os.path.getsize(os.path.join(self.path, name))
        return self._members[name].size

    @contextlib.contextmanager
    def open(self, name):
        if self._tar is None:
            real = os.path.realpath(os.path.join(self.path, name))
            if not real.startswith(os.path.realpath(self.path) + os.sep):
                raise fail(self.path, "%s points outside the layout" % name)
            try:
                f = open(real, "rb")
            except OSError as e:
                raise fail(self.path,
                           "layout has no %s: %s" % (name, e)) from e
            with f:
                yield f
            return
        member = self._members.get(name)
        if member is None:
            raise fail(self.path, "archive has no %s" % name)
        f = self._tar.extractfile(member)
        try:
            yield f
        finally:
            f.close()

    def read_json(self, name):
        """(document, raw bytes) of JSON member ``name``."""
        try:
            with self.open(name) as f:
                data = f.read(SMALL + 1)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise fail(self.path, "cannot read %s: %s" % (name, e)) from e
        if len(data) > SMALL:
            raise fail(self.path, "%s is larger than %d bytes" % (name,
                                                                   SMALL))
        try:
            return json.loads(data), data
        except RecursionError:
            raise fail(self.path, "%s is nested too deeply" % name) from None
        except ValueError as e:
            raise fail(self.path, "%s is not JSON: %s" % (name, e)) from e

    def copy_blob(self, name, dest, digest, sink=None):
        """Copy member ``name`` to file ``dest``, checking its sha256 hex
        ``digest`` (None: don't) and feeding every chunk to ``sink``.

        The sink (the layer check: inflate and parse) runs in a thread
        beside the copy (read, hash, write): both spend their time in C
        code that releases the GIL, so a layer costs about one of the two,
        not their sum.  A refused layer stops the copy's writes; the rest
        is only hashed, so that a corrupt blob is reported as such.
        """
        h = hashlib.sha256()
        checker = _Checker(sink) if sink is not None else None
        try:
            with self.open(name) as src, open(dest, "wb") as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    if checker is None or checker.put(chunk):
                        out.write(chunk)
        except (tarfile.TarError, EOFError) as e:
            raise fail(self.path, "truncated archive reading %s: %s"
                       % (name, e)) from e
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise no_space(dest, "copying %s out of %s"
                               % (name, self.path)) from e
            raise
        finally:
            refused = checker.finish() if checker is not None else None
        if digest is not None and h.hexdigest() != digest:
            raise fail(self.path, "digest mismatch for %s: content is "
                       "sha256:%s" % (name, h.hexdigest()))
        if refused is not None:
            raise refused
        return h.hexdigest()


class _Checker:
    """Runs ``sink.feed``/``sink.close`` in a thread, a few chunks behind."""

    def __init__(self, sink):
        self._sink = sink
        self._queue = queue.Queue(maxsize=8)
        self.error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="layer-check")
        self._thread.start()

    def _run(self):
        while True:
            chunk = self._queue.get()
            if chunk is None:
                break
            if self.error is None:
                try:
                    self._sink.feed(chunk)
                except BaseException as e:
                    self.error = e
        if self.error is None:
            try:
                self._sink.close()
            except BaseException as e:
                self.error = e

    def put(self, chunk):
        """Queue a chunk; False once the check has refused the stream."""
        if self.error is None:
            self._queue.put(chunk)
        return self.error is None

    def finish(self):
        self._queue.put(None)
        self._thread.join()
        return self.error
