package clusters

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// WorkerImage is the image Kubernetes tests run their pods in: Docker's atlas-ce/worker:latest,
// imported into the cluster's containerd. Pods use it with imagePullPolicy: Never (there is no
// registry).
const WorkerImage = "atlas-ce/worker:latest"

// PauseImage is the pod sandbox's image (scripts/k8s-cluster.sh imports it): a static pause
// binary and nothing else, so no python3. Tests use it as an image a job cannot start in.
const PauseImage = "docker.io/atlas-test/pause:1"

// Kubernetes is the test machine's single-node cluster, as an administrator sees it.
type Kubernetes struct {
	Kubeconfig string // the administrator's kubeconfig (KUBECONFIG for kubectl and client-go)
	Node       string // the one node's name
	Version    string // the Kubernetes version, e.g. v1.31.13
	PodLogs    string // where the kubelet writes container logs (/var/log/pods)
	Logs       string // the components' own logs
	Config     *rest.Config
	Client     kubernetes.Interface
}

var k8sProbe probe

// NeedKubernetes returns the test machine's Kubernetes cluster. Without it (not started, or the
// worker image not imported) the test skips, saying why; with CI=true it fails instead. When the
// test fails, the end of each component's log is shown.
func NeedKubernetes(t testing.TB) *Kubernetes {
	t.Helper()
	k8sProbe.run("k8s-cluster.sh", "scripts/k8s-cluster.sh up")
	k8sProbe.need(t, "Kubernetes")
	env := k8sProbe.env
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		t.Fatalf("reading the cluster's kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 50, 100 // tests in parallel packages share one cluster
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("a client for the cluster: %v", err)
	}
	k := &Kubernetes{Kubeconfig: env["KUBECONFIG"], Node: env["ATLAS_K8S_NODE"], Version: env["ATLAS_K8S_VERSION"],
		PodLogs: env["ATLAS_K8S_POD_LOGS"], Logs: env["ATLAS_K8S_LOGS"], Config: cfg, Client: client}
	var logs []string
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "containerd"} {
		logs = append(logs, filepath.Join(k.Logs, c+".log"))
	}
	logTails(t, logs...)
	return k
}

// Namespace creates a namespace of the test's own and deletes it, with all in it, when the test
// ends.
func (k *Kubernetes) Namespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "atlas-test-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := k.Client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"atlas.test": "true"}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bg := metav1.DeletePropagationBackground
		_ = k.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	})
	return name
}

// ContainerLog returns what a container of a pod wrote (stdout and stderr, in order) as the
// kubelet stored it under PodLogs, in the CRI's format ("<time> <stream> <P|F> <text>" per
// line, P for a partial line).
func (k *Kubernetes) ContainerLog(pod *corev1.Pod, container string) (string, error) {
	dir := filepath.Join(k.PodLogs, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), container)
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(files) == 0 {
		return "", &os.PathError{Op: "read container log", Path: dir, Err: os.ErrNotExist}
	}
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		return "", err
	}
	defer f.Close()
	var out strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), " ", 4)
		if len(fields) < 3 {
			continue
		}
		text := ""
		if len(fields) == 4 {
			text = fields[3]
		}
		out.WriteString(text)
		if fields[2] != "P" {
			out.WriteByte('\n')
		}
	}
	return out.String(), sc.Err()
}
