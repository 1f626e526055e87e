package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/atlasgo/atlas/internal/executor/kubernetes"
	"github.com/atlasgo/atlas/test/clusters"
)

// k8sServer is atlas-server on the production stack: its jobs on the test machine's
// Kubernetes cluster, in a namespace of the test's own, through an account that has exactly
// the rights deploy/kubernetes/rbac.yaml grants; its database on PostgreSQL; its blobs in S3.
// Pods are on the host's network and reach the server on loopback; gates are host folders
// jobs mount (allowed_volume_roots).
type k8sServer struct {
	*Server
	k            *clusters.Kubernetes
	ns           string
	installation string
	env          []string // the S3 credentials
	workers      int
}

func startK8sServer(t *testing.T, workers int) *k8sServer {
	t.Helper()
	requirePython(t)
	k := clusters.NeedKubernetes(t)
	db := postgresDatabase(t)
	srv, _, bucket := s3Bucket(t)
	ns := k.Namespace(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ks := &k8sServer{k: k, ns: ns, installation: "e2e-" + hex.EncodeToString(b), workers: workers,
		env: []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}}
	home := newHome(t)
	port := freePort(t)
	cfg := fmt.Sprintf(`executor: kubernetes
database: %s
blobs: s3://%s/atlas?endpoint=%s
allowed_volume_roots: [/tmp]
stop_grace: 5s
kubernetes:
  kubeconfig: %s
  namespace: %s
  installation: %s
  scheduler_url: http://127.0.0.1:%d
  image_pull_policy: Never
  host_network: true
`, db, bucket, url.QueryEscape(srv.Endpoint), serverKubeconfig(t, k, ns), ns, ks.installation, port)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte(cfg), 0o600))
	ks.Server = startServerEnv(t, home, home, ks.env, "--executor", "kubernetes", "--port", strconv.Itoa(port), "--workers", strconv.Itoa(workers))
	require.Contains(t, ks.Stdout.String(), "executor: kubernetes (", ks.Stdout.String())
	return ks
}

// restart starts the killed server again, on the same port.
func (ks *k8sServer) restart(t *testing.T) {
	t.Helper()
	ks.Server = startServerEnv(t, ks.Home, ks.Home, ks.env, "--executor", "kubernetes", "--port", strconv.Itoa(ks.Port), "--workers", strconv.Itoa(ks.workers))
}

// kubeJobs lists the names of this server's Kubernetes Jobs.
func (ks *k8sServer) kubeJobs(t *testing.T) []string {
	t.Helper()
	list, err := ks.k.Client.BatchV1().Jobs(ks.ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: labels.Set{kubernetes.LabelInstallation: ks.installation}.String()})
	require.NoError(t, err)
	var out []string
	for _, j := range list.Items {
		if j.DeletionTimestamp == nil {
			out = append(out, j.Name)
		}
	}
	return out
}

// serverKubeconfig applies deploy/kubernetes/rbac.yaml to ns and returns a kubeconfig of its
// account, so the server has the rights the guide gives it and no more.
func serverKubeconfig(t *testing.T, k *clusters.Kubernetes, ns string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "kubernetes", "rbac.yaml"))
	require.NoError(t, err)
	data = bytes.ReplaceAll(data, []byte("namespace: ml"), []byte("namespace: "+ns))
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(doc, &meta))
		switch meta.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			_, err = k.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &o, metav1.CreateOptions{})
		case "Role":
			var o rbacv1.Role
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			_, err = k.Client.RbacV1().Roles(ns).Create(ctx, &o, metav1.CreateOptions{})
		case "RoleBinding":
			var o rbacv1.RoleBinding
			require.NoError(t, yaml.UnmarshalStrict(doc, &o))
			_, err = k.Client.RbacV1().RoleBindings(ns).Create(ctx, &o, metav1.CreateOptions{})
		default:
			t.Fatalf("deploy/kubernetes/rbac.yaml: unexpected kind %q", meta.Kind)
		}
		require.NoError(t, err)
	}
	hour := int64(3600)
	tok, err := k.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "atlas-server",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: k.Config.Host, CertificateAuthorityData: k.Config.CAData,
		CertificateAuthority: k.Config.CAFile, InsecureSkipTLSVerify: k.Config.Insecure}
	cfg.AuthInfos["atlas-server"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "atlas-server", Namespace: ns}
	cfg.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// gatedProject is a project whose gate.py waits for a file in a host folder the job mounts at
// /gate; openGate there lets it finish.
func gatedProject(t *testing.T, name string, files map[string]string) (proj, gateDir string) {
	t.Helper()
	gateDir = filepath.Dir(gatePath(t))
	files["gate.py"] = gateScript
	files["job.config.yaml"] = "worker:\n  volumes:\n    " + gateDir + ": {bind: /gate, mode: ro}\n"
	return newProject(t, name, files), gateDir
}

// The seed's walkthrough with jobs on Kubernetes, PostgreSQL and S3: submit with streaming
// logs, params, metrics, tags and artifacts, get logs, get job (the archive), stop, delete and
// clear-queue, with the cluster's own reason for a job it cannot place.
func TestKubernetesWalkthrough(t *testing.T) {
	t.Parallel()
	s := startK8sServer(t, 3)
	walkthroughOn(t, s.Server, "kubernetes")
	require.Eventually(t, func() bool { return len(s.kubeJobs(t)) == 0 }, time.Minute, 100*time.Millisecond,
		"the Kubernetes Job goes once the end is recorded")
	secrets, err := s.k.Client.CoreV1().Secrets(s.ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: labels.Set{kubernetes.LabelInstallation: s.installation}.String()})
	require.NoError(t, err)
	for _, sec := range secrets.Items {
		require.NotNil(t, sec.DeletionTimestamp, "the job's token Secret goes with its Job: %s", sec.Name)
	}

	// A running job streams its logs, and stops with SIGTERM.
	live, gateDir := gatedProject(t, "live", map[string]string{})
	p := startCLI(t, s.Home, live, "submit", "scheduler", ".", "gate.py", "/gate/gate")
	require.NoError(t, p.Stdout.WaitFor("job is waiting for its gate", 3*time.Minute), p.Stderr.String())
	liveID := jobID(t, p.Stderr.String())
	require.Equal(t, "running", s.job(t, liveID).State, "the output arrived while the pod ran")
	res := cli(t, s.Home, live, "stop", "job", "scheduler", liveID)
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, `Stopped job `+liveID+`: exited after SIGTERM in [0-9.]+ s`, res.Stdout)
	p.Wait(t)
	require.Equal(t, "stopped", s.job(t, liveID).State)
	res = cli(t, s.Home, live, "delete", "job", "scheduler", liveID)
	require.Equal(t, 0, res.Code, res.String())
	require.False(t, s.jobExists(t, liveID))
	openGate(t, filepath.Join(gateDir, "gate"))

	// More GPUs than the cluster has: handed over, and pending with the cluster's reason; a job
	// behind them waits in Atlas's queue. clear-queue removes the one and stops the others.
	gpus := newProject(t, "gpus", map[string]string{"main.py": "print('never runs')\n", "job.config.yaml": "num_gpus: 1\n"})
	pending := []string{s.submitNoStream(t, gpus, "main.py"), s.submitNoStream(t, gpus, "main.py"), s.submitNoStream(t, gpus, "main.py")}
	queued := s.submitNoStream(t, gpus, "main.py")
	for _, id := range pending {
		j := s.waitWhile(t, id, "queued")
		require.Equal(t, "starting", j.State)
		require.Eventually(t, func() bool { return strings.Contains(s.job(t, id).WaitingReason, "Insufficient nvidia.com/gpu") },
			time.Minute, 100*time.Millisecond, "the cluster's reason: %q", s.job(t, id).WaitingReason)
	}
	res = cli(t, s.Home, gpus, "get", "queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, `(?m)^`+pending[0]+`\s.*not running yet: Kubernetes: 0/1 nodes are available: 1 Insufficient nvidia\.com/gpu`, res.Stdout)
	require.Regexp(t, `(?m)^1\s+`+queued+`\s.*waiting for a free worker \(3 of 3 busy\)$`, res.Stdout)
	clearQueueOn(t, s.Server, gpus, pending, queued)
	require.Eventually(t, func() bool { return len(s.kubeJobs(t)) == 0 }, time.Minute, 100*time.Millisecond)
}

// A hyperparameter search of 10 jobs from the SDK, 4 at a time on the cluster: every job runs
// once with its own params, and the bundle is stored once.
func TestKubernetesSearch(t *testing.T) {
	t.Parallel()
	s := startK8sServer(t, 4)
	searchOn(t, s.Server)
}

// What goes wrong on a cluster ends the job with the cluster's reason: over its memory limit,
// an image that is not there, an image without Python (whose error is still in the log).
func TestKubernetesFailures(t *testing.T) {
	t.Parallel()
	s := startK8sServer(t, 3)
	oom := newProject(t, "oom", map[string]string{"job.config.yaml": "ram: 0.1\n", "main.py": `x = []
for i in range(100):
    x.append(bytearray(20 * 1024 * 1024))
    print("allocated", (i + 1) * 20, "MB", flush=True)
`})
	noImage := newProject(t, "noimage", map[string]string{"main.py": "print(1)\n", "job.config.yaml": "worker:\n  image: atlas-ce/not-there:1\n"})
	noPython := newProject(t, "nopython", map[string]string{"main.py": "print(1)\n",
		"job.config.yaml": "worker:\n  image: " + clusters.PauseImage + "\n"})
	ids := []string{s.submitNoStream(t, oom, "main.py"), s.submitNoStream(t, noImage, "main.py"), s.submitNoStream(t, noPython, "main.py")}

	j := s.waitDone(t, ids[0])
	require.Equal(t, "failed", j.State)
	require.Equal(t, "killed: out of memory (the job's limit is ram: 0.1 GB; OOMKilled)", j.Reason)
	require.Contains(t, s.logs(t, ids[0]), "allocated 20 MB", "its output up to the kill")

	j = s.waitDone(t, ids[1])
	require.Equal(t, "failed", j.State)
	require.Contains(t, j.Reason, "the pod cannot start: ErrImageNeverPull:")
	require.Contains(t, j.Reason, "atlas-ce/not-there:1")

	j = s.waitDone(t, ids[2])
	require.Equal(t, "failed", j.State)
	require.Contains(t, j.Reason, "the pod cannot start:")
	require.Contains(t, s.logs(t, ids[2]), `exec: "python3": executable file not found`,
		"what the pod said before anything could ship it is in the log")
}

// kill -9 of the server while jobs run on the cluster: they go on, one ends while the server
// is down, and after the restart every job ends with all its output and values, once; a Job of
// this installation that no Atlas job owns is deleted.
func TestKubernetesRestart(t *testing.T) {
	t.Parallel()
	s := startK8sServer(t, 3)
	proj, gateDir := gatedProject(t, "restart", map[string]string{"main.py": halvesMain})
	running := []string{s.submitNoStream(t, proj, "main.py", "/gate/gate"), s.submitNoStream(t, proj, "main.py", "/gate/gate")}
	quick := s.submitNoStream(t, proj, "gate.py", "/gate/quick")
	for _, id := range running {
		s.waitLog(t, id, "first half delivered")
	}
	s.waitLog(t, quick, "job is waiting for its gate")

	// A Job of this installation that no Atlas job owns.
	orphan := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "atlas-orphan", Namespace: s.ns,
		Labels: map[string]string{kubernetes.LabelInstallation: s.installation}, Annotations: map[string]string{kubernetes.AnnotationJobID: "gone"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "x", Image: clusters.WorkerImage, ImagePullPolicy: corev1.PullNever, Command: []string{"true"}}}}}}}
	_, err := s.k.Client.BatchV1().Jobs(s.ns).Create(t.Context(), orphan, metav1.CreateOptions{})
	require.NoError(t, err)

	s.Kill(t)
	openGate(t, filepath.Join(gateDir, "quick"))
	// The quick job's command ends while the server is down (the in-job side writes its output
	// to the container's log too); its pod keeps trying to deliver and report until it is back.
	require.Eventually(t, func() bool {
		pods, err := s.k.Client.CoreV1().Pods(s.ns).List(t.Context(), metav1.ListOptions{
			LabelSelector: labels.Set{kubernetes.LabelJob: kubernetes.JobName(quick)}.String()})
		if err != nil {
			return false
		}
		for i := range pods.Items {
			if out, err := s.k.ContainerLog(&pods.Items[i], kubernetes.ContainerName); err == nil && strings.Contains(out, "job passed its gate") {
				return true
			}
		}
		return false
	}, 3*time.Minute, 200*time.Millisecond)
	s.restart(t)
	require.NoError(t, s.Stderr.WaitFor("atlas-orphan", time.Minute), "a log line for the orphan")
	openGate(t, filepath.Join(gateDir, "gate"))

	j := s.waitDone(t, quick)
	require.Equal(t, "completed", j.State, j.Reason)
	require.Contains(t, s.logs(t, quick), "job passed its gate", "what it printed while the server was down")
	for _, id := range running {
		requireBothHalves(t, s.Server, id)
	}
	require.NotContains(t, s.kubeJobs(t), "atlas-orphan", "the orphan is deleted")
}
