#!/usr/bin/env python3
"""Builds the foundations SDK wheel (pure Python, no dependencies) with the standard library
only, so it can be built and installed offline: `pip install bin/foundations-*.whl`.

    scripts/python-wheel.py [OUT_DIR]
"""
import base64
import hashlib
import os
import re
import sys
import zipfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
with open(os.path.join(root, "foundations", "__init__.py"), encoding="utf-8") as f:
    version = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)
out_dir = sys.argv[1] if len(sys.argv) > 1 else "bin"
os.makedirs(out_dir, exist_ok=True)
name = "foundations-{}-py3-none-any.whl".format(version)
dist = "foundations-{}.dist-info".format(version)
files = {}
for fn in sorted(os.listdir(os.path.join(root, "foundations"))):
    if fn.endswith(".py"):
        with open(os.path.join(root, "foundations", fn), "rb") as f:
            files["foundations/" + fn] = f.read()
files[dist + "/METADATA"] = ("Metadata-Version: 2.1\nName: foundations\nVersion: {}\n"
                             "Summary: Atlas SDK: track ML jobs and submit them to Atlas\n"
                             "Requires-Python: >=3.8\n").format(version).encode()
files[dist + "/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: atlas python-wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
record = []
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append("{},sha256={},{}".format(path, digest, len(data)))
record.append(dist + "/RECORD,,")
files[dist + "/RECORD"] = ("\n".join(record) + "\n").encode()
path = os.path.join(out_dir, name)
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for p, data in files.items():
        info = zipfile.ZipInfo(p, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, data, zipfile.ZIP_DEFLATED)
print(path)
