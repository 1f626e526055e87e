package clusters

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// podSpec is a pod of one container, "main", running python3 in the worker image on the host's
// network (test traffic stays on loopback), never restarted.
func podSpec(code, memory string) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		HostNetwork:   true,
		Containers: []corev1.Container{{
			Name:            "main",
			Image:           WorkerImage,
			ImagePullPolicy: corev1.PullNever,
			Command:         []string{"python3", "-c", code},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse(memory),
				corev1.ResourceCPU:    resource.MustParse("500m"),
			}},
		}},
	}
}

// until watches one object of a kind until cond holds, starting from a list so that no change
// is missed, and returns the object.
func until[T runtime.Object](t *testing.T, lw *cache.ListWatch, obj T, timeout time.Duration, cond func(T) bool) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last T
	ev, err := watchtools.UntilWithSync(ctx, lw, obj, nil, func(e watch.Event) (bool, error) {
		o, ok := e.Object.(T)
		if !ok {
			return false, nil
		}
		last = o
		return cond(o), nil
	})
	require.NoError(t, err, "waiting; last seen: %+v", last)
	return ev.Object.(T)
}

// A batch/v1 Job running python3 in the worker image completes, and what it printed can be read
// both from the API (the API server reaches the kubelet over loopback) and from the kubelet's
// log files.
func TestKubernetesJobCompletes(t *testing.T) {
	t.Parallel()
	k := NeedKubernetes(t)
	ns := k.Namespace(t)
	tok := token()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32),
			Template: corev1.PodTemplateSpec{
				Spec: podSpec("import sys; print('hello "+tok+"'); print('to stderr', file=sys.stderr)", "128Mi"),
			},
		},
	}
	_, err := k.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	jobs := k.Client.BatchV1().Jobs(ns)
	done := until(t, &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", job.Name).String()
			return jobs.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", job.Name).String()
			return jobs.Watch(ctx, o)
		},
	}, &batchv1.Job{}, 2*time.Minute, func(j *batchv1.Job) bool { return j.Status.Succeeded+j.Status.Failed > 0 })
	require.Equal(t, int32(1), done.Status.Succeeded, "the job succeeded: %+v", done.Status)

	pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job.Name})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	pod := &pods.Items[0]
	require.Equal(t, corev1.PodSucceeded, pod.Status.Phase)
	require.Equal(t, k.Node, pod.Spec.NodeName)

	// stdout and stderr are two pipes: their lines may interleave either way.
	want := []string{"hello " + tok, "to stderr"}
	stored, err := k.ContainerLog(pod, "main")
	require.NoError(t, err)
	require.ElementsMatch(t, want, strings.Split(strings.TrimSuffix(stored, "\n"), "\n"), "the kubelet's log file")

	stream, err := k.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main"}).Stream(ctx)
	require.NoError(t, err, "reading the log through the API")
	defer stream.Close()
	got, err := io.ReadAll(stream)
	require.NoError(t, err)
	require.ElementsMatch(t, want, strings.Split(strings.TrimSuffix(string(got), "\n"), "\n"), "the log through the API")
}

// A pod that allocates more than its memory limit is killed by the kernel, and Kubernetes says
// so: phase Failed, reason OOMKilled, exit code 137.
func TestKubernetesPodOverItsMemoryLimitIsOOMKilled(t *testing.T) {
	t.Parallel()
	k := NeedKubernetes(t)
	ns := k.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hungry"},
		Spec:       podSpec("b = bytearray(b'x') * (400 << 20); print('survived', len(b))", "64Mi"),
	}
	_, err := k.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	pods := k.Client.CoreV1().Pods(ns)
	done := until(t, &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", pod.Name).String()
			return pods.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", pod.Name).String()
			return pods.Watch(ctx, o)
		},
	}, &corev1.Pod{}, 2*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	require.Equal(t, corev1.PodFailed, done.Status.Phase)
	require.Len(t, done.Status.ContainerStatuses, 1)
	term := done.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term, "the container terminated: %+v", done.Status.ContainerStatuses[0].State)
	require.Equal(t, "OOMKilled", term.Reason)
	require.Equal(t, int32(137), term.ExitCode)
}
