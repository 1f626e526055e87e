"""The output of a script run by hand becomes its job's logs, and still reaches the terminal.

Capture puts a pipe (a pseudo-terminal when the stream was a terminal, so programs still see one)
over file descriptors 1 and 2; a thread per stream copies what arrives to the original stream
and to a sink. Being at the descriptor level, it catches print(), C extensions and child
processes alike. If anything in it fails, the descriptor is given back to the original stream.

Shipper sends that output to the server in order, exactly once by byte offset (POST
/api/v1/jobs/{id}/logs?offset=N): output is cut into chunks (by size, or after a short while),
each written to the spool before it is sent and removed once acknowledged, so a server that is
down loses nothing: the chunks left behind are sent by the next script (resend_chunks).
"""
import errno
import os
import sys
import threading
import time

from ._client import APIError, Unreachable, quote

CHUNK_BYTES = 256 << 10  # output is sent once this much is waiting, or after SHIP_INTERVAL
MAX_CHUNK = 1 << 20
HISTORY_LIMIT = 1 << 20  # output kept to send again if the job moves project (set_project_name)
SHIP_INTERVAL = 0.25
MEMORY_LIMIT = 64 << 20  # unsent output kept in memory; past it, only in the spool (without one, dropped)
PREFIX = "log-"


_terminal = [2]  # where the SDK's own messages go: the original stderr while output is captured


def say(level, msg):
    """Prints one of the SDK's own messages on stderr. While output is captured it goes to the
    terminal only: the job's log is the script's output."""
    line = "Foundations {}: {}".format(level, msg)
    try:
        if _terminal[0] == 2:
            print(line, file=sys.stderr, flush=True)
        else:
            _write_all(_terminal[0], (line + "\n").encode("utf-8", "replace"))
    except (OSError, ValueError, AttributeError):
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Stream:
    """One captured stream: descriptors (1, 2, or both when they are the same file, such as one
    terminal, so that the log keeps the order of what was written) put on one pipe."""

    def __init__(self, fds, sink):
        self.fds = fds
        self.sink = sink
        self.saved = {}
        self.lock = threading.Lock()
        self.restored = False
        try:
            for fd in fds:
                self.saved[fd] = os.dup(fd)  # the original stream; not inherited by child processes
            r, w = self._pair(fds[0])
        except OSError:
            self._close_saved()
            raise
        try:
            for fd in fds:
                os.dup2(w, fd)
        except OSError:
            self.restore()
            os.close(r)
            raise
        finally:
            os.close(w)
        self.out = self.saved[fds[0]]
        self.r = r
        self.thread = threading.Thread(target=self._run, name="foundations-output-{}".format(fds[0]), daemon=True)
        self.thread.start()

    @staticmethod
    def _pair(fd):
        """A pseudo-terminal in raw mode when the stream is a terminal (so the script's
        isatty() checks, colours and progress bars behave as before), else a pipe."""
        if os.isatty(fd):
            try:
                import fcntl
                import termios
                import tty
                master, slave = os.openpty()
                try:
                    tty.setraw(slave)
                    size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
                    fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
                except OSError:
                    pass
                return master, slave
            except (OSError, ImportError):
                pass
        return os.pipe()

    def _run(self):
        try:
            while True:
                try:
                    data = os.read(self.r, 65536)
                except InterruptedError:
                    continue
                except OSError as e:
                    if e.errno == errno.EIO:  # a pseudo-terminal whose other end is closed
                        break
                    raise
                if not data:
                    break
                try:
                    _write_all(self.out, data)
                except OSError:
                    pass  # the terminal went away; the log still gets it
                try:
                    self.sink(data)
                except Exception:
                    pass
        except Exception:
            self.restore()  # from now on output goes straight to the original stream
        finally:
            try:
                os.close(self.r)
            except OSError:
                pass

    def restore(self):
        """Gives the descriptors back to the original stream. The thread then copies what is
        left in the pipe and ends once no process holds it (children may)."""
        with self.lock:
            if self.restored:
                return
            self.restored = True
            for fd, saved in self.saved.items():
                try:
                    os.dup2(saved, fd)
                except OSError:
                    pass

    def _close_saved(self):
        for saved in self.saved.values():
            try:
                os.close(saved)
            except OSError:
                pass


class Capture:
    """Tees descriptors 1 and 2 into sink(bytes)."""

    def __init__(self, sink):
        _flush_std()
        self.streams = []
        try:
            same = os.path.sameopenfile(1, 2)
        except OSError:
            same = False
        for fds in ([(1, 2)] if same else [(1,), (2,)]):
            try:
                self.streams.append(_Stream(fds, sink))
            except OSError:
                pass  # closed or unusable: that stream is not captured
        for s in self.streams:
            if 2 in s.saved:
                _terminal[0] = s.saved[2]

    def stop(self, timeout=5.0):
        """Restores the descriptors and waits (up to timeout) until what was written before is
        copied. Returns False if a child process still holds the pipe."""
        _flush_std()
        for s in self.streams:
            s.restore()
        _terminal[0] = 2
        deadline = time.monotonic() + timeout
        done = True
        for s in self.streams:
            s.thread.join(max(0.0, deadline - time.monotonic()))
            done = done and not s.thread.is_alive()
        return done


def _flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass


def send_chunk(client, job_id, offset, data):
    """Sends output from byte offset of the job's log. Returns the log's length; raises
    Unreachable or APIError (409 with .length set: the log ends before offset)."""
    try:
        _, headers, body = client.request("POST", "/api/v1/jobs/{}/logs?offset={}".format(quote(job_id), offset),
                                          body=bytes(data), headers={"Content-Type": "application/octet-stream"})
    except APIError as e:
        e.length = _length(e.headers) if e.status == 409 else None
        raise
    return _length(headers) or offset + len(data)


def _length(headers):
    try:
        return int(headers.get("X-Log-Length"))
    except (TypeError, ValueError, AttributeError):
        return None


class Shipper:
    """Delivers one job's output, in order and exactly once, keeping unsent chunks in spool_dir."""

    def __init__(self, client, job_id, spool_dir):
        self.client = client
        self.job_id = job_id
        self.dir = spool_dir
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.closing = threading.Event()
        self.buf = bytearray()
        self.first = 0.0  # when the oldest byte of buf arrived
        self.offset = 0  # log offset of buf's first byte
        self.chunks = []  # [offset, spool path or None, data or None (only in the spool)], oldest first
        self.in_memory = 0
        self.gone = False  # the job has finished or was deleted: nothing more can be stored
        self.warned = False
        self.history = bytearray()  # all output, for replay(), while it is short (else None)
        self.paused = False
        self.sending = False
        self.thread = threading.Thread(target=self._loop, name="foundations-logs", daemon=True)
        self.thread.start()

    def write(self, data):
        """Called by Capture's threads: only appends to memory."""
        with self.lock:
            if self.gone:
                return
            if not self.buf:
                self.first = time.monotonic()
                self.changed.notify_all()
            self.buf += data
            if self.history is not None:
                self.history += data
                if len(self.history) > HISTORY_LIMIT:
                    self.history = None
            if len(self.buf) >= CHUNK_BYTES:
                self.changed.notify_all()

    def _next(self):
        """Waits for work: returns (a chunk just cut from the buffer or None, the oldest chunk),
        or None when closed and everything was sent."""
        with self.lock:
            self.sending = False
            self.changed.notify_all()
            while True:
                new = None
                if self.paused:
                    self.changed.wait()
                    continue
                if self.buf and (self.closing.is_set() or len(self.buf) >= CHUNK_BYTES
                                 or time.monotonic() - self.first >= SHIP_INTERVAL):
                    data = bytes(self.buf[:MAX_CHUNK])
                    del self.buf[:MAX_CHUNK]
                    self.first = time.monotonic()
                    new = [self.offset, None, data]
                    self.offset += len(data)
                    self.chunks.append(new)
                    self.in_memory += len(data)
                if self.chunks:
                    self.sending = True
                    return new, self.chunks[0]
                if self.closing.is_set() and not self.buf:
                    self.changed.notify_all()
                    return None
                wait = None if not self.buf else max(0.0, self.first + SHIP_INTERVAL - time.monotonic())
                self.changed.wait(wait)

    def _loop(self):
        backoff = 0.2
        while True:
            work = self._next()
            if work is None:
                return
            new, chunk = work
            if new is not None:
                self._spool(new)
            try:
                self._send(chunk)
                backoff = 0.2
                continue
            except (Unreachable, OSError):
                self._warn("cannot reach the Atlas server at {}; keeping the output of job {} and retrying.".format(
                    self.client.base_url, self.job_id))
            except APIError as e:
                if e.status == 409 and e.length is not None:
                    self._rebase(chunk, e.length)
                    continue
                if e.status < 500 and e.status not in (408, 429):  # finished or gone: nothing can store it
                    self._warn("the server no longer takes the output of job {}: {}".format(self.job_id, e.message))
                    self._drop_all()
                    return
            except Exception as e:  # a connection cut mid-answer, a spool file removed...: retry
                self._warn("sending the output of job {} failed ({}: {}); retrying.".format(self.job_id, type(e).__name__, e))
            if self.closing.is_set():  # at exit: retry soon, but do not spin
                time.sleep(min(backoff, 1.0))
            else:
                self.closing.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _spool(self, chunk):
        path, lost = None, False
        if self.dir is not None:
            path = os.path.join(self.dir, "{}{:020d}.bin".format(PREFIX, chunk[0]))
            try:
                with open(path + ".tmp", "wb") as f:
                    f.write(chunk[2])
                os.replace(path + ".tmp", path)
            except OSError:
                path = None
        with self.lock:
            if path is not None:
                chunk[1] = path
                if self.in_memory > MEMORY_LIMIT and chunk[2] is not None:  # a long outage: the spool keeps it
                    self.in_memory -= len(chunk[2])
                    chunk[2] = None
            elif self.in_memory > MEMORY_LIMIT and chunk in self.chunks[1:]:
                self.chunks.remove(chunk)  # no spool and no room: lose this chunk, not the script
                self.in_memory -= len(chunk[2])
                lost = True
        if lost:
            self._warn("the output of job {} could not be kept while the server was unreachable; part of it is "
                       "lost.".format(self.job_id))

    def _send(self, chunk):
        offset, path, data = chunk
        if data is None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:  # removed from the spool by hand: the next chunk resumes after a gap
                data = None
        if data is not None:
            send_chunk(self.client, self.job_id, offset, data)
        _unlink(path)
        with self.lock:
            if chunk in self.chunks:
                self.chunks.remove(chunk)
                if chunk[2] is not None:
                    self.in_memory -= len(chunk[2])
            self.changed.notify_all()

    def replay(self, replace):
        """Runs replace() (which discards the job's log and records the job again) while
        nothing is being sent; if it returns True, the output so far is sent again from the
        start of the new log. Returns what replace() returned."""
        with self.lock:
            self.paused = True
            while self.sending:
                self.changed.wait()
        ok = False
        try:
            ok = replace()
        finally:
            with self.lock:
                if ok:
                    for c in self.chunks:
                        _unlink(c[1])
                    self.chunks, self.in_memory, self.offset = [], 0, 0
                    if self.history is None:
                        self._warn("the output of job {} before it moved is not kept (it was longer than {} "
                                   "bytes).".format(self.job_id, HISTORY_LIMIT))
                        self.history = None
                    else:
                        self.buf = bytearray(self.history)
                    self.first = time.monotonic()
                self.paused = False
                self.changed.notify_all()
        return ok

    def _rebase(self, chunk, length):
        """The server's log ends before this chunk (output it had is gone, or a chunk was
        lost): carry on from where it ends, so the rest is still stored in order."""
        self._warn("the log of job {} on the server ends at byte {}, before the output sent now; part of it was "
                   "lost.".format(self.job_id, length))
        with self.lock:
            delta = length - chunk[0]
            for c in self.chunks:
                c[0] += delta
            self.offset += delta

    def _drop_all(self):
        with self.lock:
            self.gone = True
            for c in self.chunks:
                _unlink(c[1])
            self.chunks = []
            self.buf.clear()
            self.changed.notify_all()

    def _warn(self, msg):
        if not self.warned:
            self.warned = True
            say("WARNING", msg)

    def close(self, timeout):
        """Sends what is left, waiting up to timeout. True when the server has all of it (or
        can take none); otherwise what is left stays in the spool for the next script to send."""
        deadline = time.monotonic() + timeout
        with self.lock:
            self.closing.set()
            self.changed.notify_all()
            while (self.chunks or self.buf) and not self.gone:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(min(remaining, 0.5))
            done = self.gone or not (self.chunks or self.buf)
            if not done and self.buf:  # not cut yet: the spool keeps it too
                data = bytes(self.buf)
                self.buf.clear()
                self.chunks.append([self.offset, None, data])
                self.offset += len(data)
            unspooled = [c for c in self.chunks if c[1] is None and c[2] is not None]
        for c in unspooled:
            self._spool(c)
        return done


def resend_chunks(client, job_id, directory):
    """Sends the output chunks a script left in its spool directory, oldest first. Raises
    Unreachable or APIError (5xx) when the server cannot take them now."""
    names = sorted(n for n in os.listdir(directory) if n.startswith(PREFIX) and n.endswith(".bin"))
    delta = 0
    for name in names:
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            data = f.read()
        offset = int(name[len(PREFIX):-4]) + delta
        while True:
            try:
                send_chunk(client, job_id, offset, data)
            except APIError as e:
                if e.status >= 500 or e.status in (408, 429):
                    raise
                if e.status == 409 and e.length is not None and e.length != offset:
                    delta += e.length - offset
                    offset = e.length
                    continue
            break
        _unlink(path)


def _unlink(path):
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
