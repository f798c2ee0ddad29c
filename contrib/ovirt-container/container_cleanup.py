"""The clean-up after a failed or interrupted upload (container_upload):
nothing half-made stays, or the admin is told what did and how to remove
it.

Engine does the work behind both steps asynchronously, so each may have
to wait; every wait is said on stderr first (what for, how long at most)
and is bounded:

1. A transfer owns its disk: ``cancel`` ends it and removes the disk
   (ImageTransferService Cancel).  A transfer whose finalize ended in
   FINISHED_FAILURE can't be cancelled; Engine removes its disk "soon"
   (the SDK's examples/helpers/imagetransfer.py).  Waited for, at most
   ``transfer_timeout``; a disk still there is then removed here.
2. Engine refuses to remove a LOCKED disk (RemoveDiskCommand.validate,
   ACTION_TYPE_FAILED_OBJECT_LOCKED: HTTP 409 "Related operation is
   currently in progress"), and a disk is LOCKED while AddDisk creates it
   (minutes for a preallocated block disk) and while a transfer holds it.
   The disk is read until it is no longer locked, at most
   ``lock_timeout``, then removed.

A second Ctrl-C stops the waiting: the first one already ended the
upload, the second says the admin won't wait; what is left is named.
"""

import time

import ovirtsdk4 as sdk
from ovirtsdk4 import types

LOCKED = types.DiskStatus.LOCKED
CONFLICT = 409          # Engine's answer to removing a locked disk


def why(e):
    """An SDK or OS error in one line: Engine's message as its UI shows
    it ("[Cannot add ...]" without the brackets), else the first line."""
    fault = getattr(e, "fault", None)
    if isinstance(e, sdk.Error) and fault is not None and fault.detail:
        return fault.detail.strip("[]")
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__])[0]


class _Left(Exception):
    """The disk stays: why, for the error line."""


class Cleanup:
    """Cancel the transfer and remove the disk; ``run()`` says what is
    left (None: nothing)."""

    def __init__(self, system, url, disk_id, name, transfer_id=None,
                 say=None, poll=1.0, transfer_timeout=120, lock_timeout=600):
        self.system = system
        self.url = url                  # Engine's API, for the hint
        self.disk_id = disk_id
        self.name = name
        self.transfer_id = transfer_id
        self.say = say or (lambda text: None)
        self.poll = poll
        self.transfer_timeout = transfer_timeout
        self.lock_timeout = lock_timeout
        self.interrupted = False        # a Ctrl-C stopped the clean-up
        self.locked = False             # the disk, when last read
        self.removing = False           # a remove request under way

    def run(self):
        if self.disk_id is None and self.transfer_id is None:
            return None
        try:
            if self.transfer_id is not None:
                self._end_transfer()
            if self.disk_id is not None:
                self._remove_disk()
        except _Left as e:
            return self._left(str(e))
        except KeyboardInterrupt:
            self.interrupted = True
            return self._left("the clean-up was interrupted")
        except (sdk.Error, OSError) as e:
            return self._left("it could not be removed: %s" % why(e))
        return None

    def _left(self, reason):
        if self.disk_id is None:
            return "%s; transfer %s may be left: cancel it in Engine" % (
                reason, self.transfer_id)
        return ("%s; disk %s (%s) %s left: remove it%s (Administration "
                "Portal: Storage > Disks; or the API: DELETE %s/disks/%s)"
                % (reason, self.name, self.disk_id,
                   "may be" if self.removing else "is",
                   " once Engine has unlocked it" if self.locked else "",
                   self.url, self.disk_id))

    def _disk_service(self):
        return self.system.disks_service().disk_service(self.disk_id)

    def _disk(self):
        try:
            disk = self._disk_service().get()
        except sdk.NotFoundError:
            return None
        self.locked = disk.status == LOCKED
        return disk

    def _phase(self):
        """The transfer's ImageTransferPhase; None: it is gone."""
        try:
            return self.system.image_transfers_service(
            ).image_transfer_service(self.transfer_id).get().phase
        except sdk.NotFoundError:
            return None

    def _end_transfer(self):
        try:
            self.system.image_transfers_service().image_transfer_service(
                self.transfer_id).cancel()
        except sdk.Error:
            pass        # gone, or ended (FINISHED_FAILURE): waited on
        deadline = None
        while True:
            phase = self._phase()
            ended = phase is None or phase.value.startswith("finished")
            disk = self._disk() if self.disk_id is not None else None
            if ended and disk is None:
                return
            if deadline is None:
                deadline = time.monotonic() + self.transfer_timeout
                self.say(self._transfer_wait(phase))
            elif time.monotonic() > deadline:
                if disk is not None:
                    self.say("Engine did not remove disk %s in %d s: "
                             "removing it" % (self.disk_id,
                                              self.transfer_timeout))
                return
            time.sleep(self.poll)

    def _transfer_wait(self, phase):
        if phase == types.ImageTransferPhase.FINISHED_FAILURE:
            return ("transfer %s ended in finished_failure: waiting for "
                    "Engine to remove disk %s, at most %d s"
                    % (self.transfer_id, self.disk_id,
                       self.transfer_timeout))
        return ("transfer %s cancelled (%s): waiting for Engine to end it "
                "and remove disk %s, at most %d s"
                % (self.transfer_id, phase.value if phase else "gone",
                   self.disk_id, self.transfer_timeout))

    def _remove_disk(self):
        deadline = None
        while True:
            disk = self._disk()
            if disk is None:
                return
            if disk.status != LOCKED:
                self.removing = True
                try:
                    self._disk_service().remove()
                    return
                except sdk.NotFoundError:
                    return      # Engine removed it since it was read
                except sdk.Error as e:
                    self.removing = False       # refused: still there
                    if e.code != CONFLICT:
                        raise
                    # Locked since it was read: waited for as below.
                    self.locked = True
            if deadline is None:
                deadline = time.monotonic() + self.lock_timeout
                self.say("disk %s (%s) is locked (Engine is still at work "
                         "on it): waiting for Engine to unlock it, at most "
                         "%d s, to remove it" % (self.name, self.disk_id,
                                                 self.lock_timeout))
            elif time.monotonic() > deadline:
                raise _Left("it is still locked after %d s"
                            % self.lock_timeout)
            time.sleep(self.poll)
