"""Deterministic tar.gz bundles of a folder, with the same ignore rules as the CLI, and their
unpacking with the same checks as the server."""
import fnmatch
import gzip
import hashlib
import io
import os
import posixpath
import stat
import tarfile
import tempfile
import zlib

IGNORE_FILE = ".atlasignore"
# What a job never needs, and the well-known places of credentials (as the CLI leaves out):
# a script run by hand from a home directory must not archive its keys.
DEFAULT_IGNORE = [".git/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/",
                  ".ssh/", ".aws/", ".gnupg/", ".kube/", ".azure/", ".docker/", ".config/gcloud/", ".netrc", ".pypirc", ".git-credentials", ".env"]


class _Matcher:
    def __init__(self, root, use_ignore_file=True, extra=None):
        lines = list(DEFAULT_IGNORE if extra is None else extra)
        if use_ignore_file:
            try:
                with open(os.path.join(root, IGNORE_FILE), encoding="utf-8") as f:
                    lines += f.read().splitlines()
            except OSError:
                pass
        self.patterns = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            self.patterns.append((line.lstrip("/"), dir_only, anchored, negate))

    def ignored(self, rel, is_dir):
        out = False
        for glob, dir_only, anchored, negate in self.patterns:
            if dir_only and not is_dir:
                continue
            target = rel if anchored else rel.rsplit("/", 1)[-1]
            if fnmatch.fnmatchcase(target, glob.replace("**/", "*")) if anchored else fnmatch.fnmatchcase(target, glob):
                out = not negate
        return out


def _inside(rel, target):
    if not target or os.path.isabs(target):
        return False
    joined = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    return joined != ".." and not joined.startswith("../")


def entries(root, use_ignore_file=True, ignore=None):
    """Yields (relpath, absolute path, lstat) in a stable order; links out of root are skipped."""
    m = _Matcher(root, use_ignore_file, ignore)

    def walk(rel_dir):
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            names = sorted(os.listdir(abs_dir))
        except OSError:
            return
        for name in names:
            rel = rel_dir + "/" + name if rel_dir else name
            p = os.path.join(abs_dir, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if m.ignored(rel, is_dir):
                continue
            if stat.S_ISLNK(st.st_mode):
                if not _inside(rel, os.readlink(p)):
                    continue
            elif not (is_dir or stat.S_ISREG(st.st_mode)):
                continue
            yield rel, p, st
            if is_dir:
                yield from walk(rel)

    yield from walk("")


def fingerprint(root):
    """A cheap summary of a folder's files (names, sizes, times) to skip re-bundling it."""
    h = hashlib.sha256()
    for rel, _, st in entries(root):
        h.update("{}\0{}\0{}\0{}\n".format(rel, st.st_mode, st.st_size, st.st_mtime_ns).encode())
    return h.hexdigest()


def create(root, use_ignore_file=True, ignore=None):
    """Writes a bundle of root to a temporary file; returns (path, digest)."""
    return _write(entries(root, use_ignore_file, ignore), {})


def _write(items, pax):
    """Writes the archive of items, (relpath, absolute path, lstat), to a temporary file, with
    the global PAX records pax; an item without a path is a deleted entry of a delta. Returns
    (path, digest)."""
    fd, path = tempfile.mkstemp(prefix="atlas-bundle-", suffix=".tar.gz")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as raw:
            hashing = _HashingWriter(raw, h)
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax) as tar:
                    for rel, p, st in items:
                        info = tarfile.TarInfo(rel)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        if p is None:
                            info.pax_headers = {"ATLAS.deleted": "1"}
                            tar.addfile(info)
                            continue
                        info.mode = stat.S_IMODE(st.st_mode)
                        info.mtime = int(st.st_mtime)
                        if stat.S_ISDIR(st.st_mode):
                            info.type = tarfile.DIRTYPE
                            tar.addfile(info)
                        elif stat.S_ISLNK(st.st_mode):
                            info.type = tarfile.SYMTYPE
                            info.linkname = os.readlink(p)
                            tar.addfile(info)
                        else:
                            info.size = st.st_size
                            with open(p, "rb") as f:
                                tar.addfile(info, f)
    except BaseException:
        os.unlink(path)
        raise
    return path, "sha256:" + h.hexdigest()


def _kind(m):
    return "d" if m.isdir() else "l" if m.issym() else "f" if m.isreg() else m.type


def index(path):
    """What create_delta compares a folder with: the entries of the bundle at path, by name, as
    (kind, mode, mtime, size, link target, sha256 of the content)."""
    out = {}
    with tarfile.open(path, "r:gz") as tf:
        for m in tf:
            if m.type in (tarfile.XGLTYPE, tarfile.XHDTYPE):
                continue
            d = _sha256(tf.extractfile(m)).digest() if m.isreg() else None
            out[m.name.rstrip("/")] = (_kind(m), m.mode, int(m.mtime), m.size if m.isreg() else 0,
                                       m.linkname if m.issym() else "", d)
    return out


def _same(old, p, st):
    """Whether the entry at p (lstat st) is the bundle's entry old, as index describes it."""
    kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
    link = os.readlink(p) if kind == "l" else ""
    size = st.st_size if kind == "f" else 0
    if old[:5] != (kind, stat.S_IMODE(st.st_mode), int(st.st_mtime), size, link):
        return False
    if kind != "f":
        return True
    with open(p, "rb") as f:
        return _sha256(f).digest() == old[5]


def create_delta(root, base, base_digest):
    """Writes an archive of everything in root holding only what differs from the bundle whose
    index (see index) is base and whose digest is base_digest, in the server's format (its
    bundle.CreateDelta): a global header naming the base, then the added and changed entries
    and a marked empty entry for each one deleted, in the order create writes them. The server
    rebuilds the whole archive from it when it is downloaded. Returns (path, digest)."""
    base = dict(base)
    out = []  # (path components, rel, absolute path or None for a deletion, lstat)
    for rel, p, st in entries(root, use_ignore_file=False, ignore=[]):
        old = base.pop(rel, None)
        if old is not None and _same(old, p, st):
            continue
        out.append((rel.split("/"), rel, p, st))
    out += [(rel.split("/"), rel, None, None) for rel in base]
    out.sort(key=lambda e: e[0])
    return _write(((rel, p, st) for _, rel, p, st in out), {"ATLAS.base": base_digest})


class _HashingWriter(io.RawIOBase):
    def __init__(self, f, h):
        self.f, self.h = f, h

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        return self.f.write(b)


def _sha256(f):
    """The sha256 of what is left to read of the file object f."""
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h


def file_digest(path):
    with open(path, "rb") as f:
        return "sha256:" + _sha256(f).hexdigest()


class BundleError(ValueError):
    """A bundle that cannot be unpacked safely."""


MAX_BYTES = 20 << 30
MAX_ENTRIES = 1_000_000


def _clean(name):
    """A tar entry's name, checked and made relative ('/'-separated), as the server's extractor
    does: no NUL, no absolute path or drive, no '..' component."""
    if not name:
        raise BundleError("bundle has an entry with an empty name")
    if "\x00" in name:
        raise BundleError("bundle entry {!r} has a NUL byte in its name".format(name))
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        raise BundleError("bundle entry {!r} has an absolute path".format(name))
    if ".." in n.split("/"):
        raise BundleError("bundle entry {!r} has a \"..\" path component".format(name))
    return posixpath.normpath(n)


def _link_inside(name, target, is_real_dir=None):
    """Whether a symlink at name with target resolves inside the root. A '..' may only step
    back out of a real directory (is_real_dir), since after a link it leads elsewhere; with
    is_real_dir None the check is lexical only."""
    if not target or target.startswith("/") or "\x00" in target or (len(target) > 1 and target[1] == ":"):
        return False
    stack = [p for p in posixpath.dirname(name).split("/") if p and p != "."]
    parents = len(stack)
    for c in target.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not stack:
                return False
            if len(stack) > parents:
                if is_real_dir is not None and not is_real_dir("/".join(stack)):
                    return False
            else:
                parents -= 1
            stack.pop()
        else:
            stack.append(c)
    return True


def extract(path, dest, max_bytes=MAX_BYTES, max_entries=MAX_ENTRIES):
    """Unpacks the bundle (a gzip-compressed tar) at path into the existing folder dest,
    treating it as hostile, with the rules of the server's own extractor: nothing is written
    outside dest or through a link, links that lead out are refused, devices and fifos are
    refused, and the total size and number of entries are capped. Symlinks are made last, so
    no entry is ever written through one. Raises BundleError."""
    real = {}  # relative path -> True for directories the archive made (real, not links)
    links = []
    dirs = []
    total = [0]

    def lstat(rel):
        try:
            return os.lstat(os.path.join(dest, rel))
        except FileNotFoundError:
            return None

    def check_parents(rel, orig):
        parts = posixpath.dirname(rel).split("/")
        for i in range(len(parts)):
            p = "/".join(parts[:i + 1])
            if not p or p == "." or real.get(p):
                continue
            st = lstat(p)
            if st is None:
                return
            if stat.S_ISLNK(st.st_mode):
                raise BundleError("bundle entry {!r} is inside {!r}, which is a link".format(orig, p))
            if not stat.S_ISDIR(st.st_mode):
                raise BundleError("bundle entry {!r} is inside {!r}, which is not a directory".format(orig, p))
            real[p] = True

    def add(n):
        if n > max_bytes - total[0]:
            raise BundleError("bundle expands to more than {} bytes".format(max_bytes))
        total[0] += n

    def write(rel, orig, mode, src, size, mtime):
        parent = posixpath.dirname(rel)
        if parent:
            os.makedirs(os.path.join(dest, parent), 0o755, exist_ok=True)
        target = os.path.join(dest, rel)
        st = lstat(rel)
        if st is not None:
            if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                raise BundleError("bundle entry {!r} replaces a directory or a link".format(orig))
            os.unlink(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), (mode & 0o777) | 0o600)
        with os.fdopen(fd, "wb") as out:
            left = size
            while left > 0:
                block = src.read(min(left, 1 << 20))
                if not block:
                    raise BundleError("bundle is truncated at {!r}".format(orig))
                out.write(block)
                left -= len(block)
        if mtime is not None:
            os.utime(target, (mtime, mtime))

    try:
        with tarfile.open(path, "r:gz") as tf:
            count = 0
            for m in tf:
                count += 1
                if count > max_entries:
                    raise BundleError("bundle has more than {} entries".format(max_entries))
                if m.type in (tarfile.XGLTYPE,):
                    continue
                rel = _clean(m.name)
                if rel == ".":
                    continue
                check_parents(rel, m.name)
                if m.isdir():
                    st = lstat(rel)
                    if st is not None and stat.S_ISLNK(st.st_mode):
                        raise BundleError("bundle entry {!r} is a directory where there is a link".format(m.name))
                    os.makedirs(os.path.join(dest, rel), 0o700, exist_ok=True)
                    real[rel] = True
                    dirs.append((rel, m.mode, m.mtime))
                elif m.isreg():
                    add(m.size)
                    write(rel, m.name, m.mode, tf.extractfile(m), m.size, m.mtime)
                elif m.issym():
                    if not _link_inside(rel, m.linkname):
                        raise BundleError("bundle entry {!r} is a link pointing outside the bundle ({!r})".format(
                            m.name, m.linkname))
                    links.append((rel, m.name, m.linkname))
                elif m.islnk():
                    src = _clean(m.linkname)
                    st = lstat(src) if src != "." else None
                    if st is None or not stat.S_ISREG(st.st_mode):
                        raise BundleError("bundle entry {!r} links to {!r}, which is not a file of the bundle".format(
                            m.name, m.linkname))
                    add(st.st_size)
                    with open(os.path.join(dest, src), "rb") as f:
                        write(rel, m.name, st.st_mode, f, st.st_size, None)
                else:
                    raise BundleError("bundle entry {!r} has an unsupported type (devices, fifos and sockets are "
                                      "refused)".format(m.name))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise BundleError("bundle is truncated or corrupt: {}".format(e)) from None

    def is_real_dir(p):
        st = lstat(p)
        return st is not None and stat.S_ISDIR(st.st_mode)

    for rel, orig, target in links:
        check_parents(rel, orig)
        if not _link_inside(rel, target, is_real_dir):
            raise BundleError("bundle entry {!r} is a link pointing outside the bundle ({!r})".format(orig, target))
        if lstat(rel) is not None:
            raise BundleError("bundle entry {!r} is a link where there is already a file".format(orig))
        os.symlink(target, os.path.join(dest, rel))
    for rel, mode, mtime in dirs:
        os.chmod(os.path.join(dest, rel), (mode & 0o777) | 0o700)
        os.utime(os.path.join(dest, rel), (mtime, mtime))
