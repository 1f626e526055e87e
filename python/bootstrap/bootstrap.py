# The first process of a job that runs where the server's files are not (a Kubernetes pod, a
# Slurm node): it fetches the foundations SDK from the server (GET /api/v1/sdk, with the job's
# token), and runs its in-job side, foundations/_runner.py. Given as `python3 -c`, so nothing
# has to be in the image but Python 3. It waits for a server that is away for a while, and
# removes its copy of the SDK when the in-job side is done.
import io, os, shutil, sys, tarfile, tempfile, time, urllib.request
url = os.environ["FOUNDATIONS_SCHEDULER_URL"].rstrip("/") + "/api/v1/sdk"
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + os.environ.get("FOUNDATIONS_TOKEN", "")})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + float(os.environ.get("FOUNDATIONS_FLUSH_TIMEOUT") or 600)
while True:
    try:
        data = opener.open(req, timeout=60).read()
        break
    except OSError as e:
        if time.monotonic() > deadline or getattr(e, "code", 500) < 500:
            print("Foundations ERROR: cannot fetch the SDK from %s: %s" % (url, e), flush=True)
            sys.exit(1)
        time.sleep(2)
sdk = tempfile.mkdtemp(prefix="atlas-sdk-")
try:
    tarfile.open(fileobj=io.BytesIO(data)).extractall(sdk)
    sys.path.insert(0, sdk)
    from foundations import _runner
    rc = _runner.main()
finally:
    shutil.rmtree(sdk, ignore_errors=True)
sys.exit(rc)
