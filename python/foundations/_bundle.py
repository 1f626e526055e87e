"""Deterministic tar.gz bundles of a folder, with the same ignore rules as the CLI."""
import fnmatch
import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile

IGNORE_FILE = ".atlasignore"
DEFAULT_IGNORE = [".git/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/"]


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
    fd, path = tempfile.mkstemp(prefix="atlas-bundle-", suffix=".tar.gz")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as raw:
            hashing = _HashingWriter(raw, h)
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for rel, p, st in entries(root, use_ignore_file, ignore):
                        info = tarfile.TarInfo(rel)
                        info.mode = stat.S_IMODE(st.st_mode)
                        info.mtime = int(st.st_mtime)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
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


class _HashingWriter(io.RawIOBase):
    def __init__(self, f, h):
        self.f, self.h = f, h

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        return self.f.write(b)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()
