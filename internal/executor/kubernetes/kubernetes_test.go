package kubernetes

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// These are unit tests of what the executor asks of the cluster, against client-go's fake
// clientset (an object store: no controllers, no pods). How jobs really run on a cluster is
// tested end to end in test/e2e against a real one.

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func TestJobNamesAreDNSLabelsThatKeepIDsApart(t *testing.T) {
	for _, id := range []string{"9e14f759-866c-4863-8e74-c2aec946a64d", "My_Job.1", strings.Repeat("x", 128), "-a-"} {
		n := JobName(id)
		require.Regexp(t, dnsLabel, n, id)
		require.LessOrEqual(t, len(n), 63-6, "room for the pod's suffix: %s", n)
		require.Equal(t, n, JobName(id), "stable, so a restarted server finds the Job again")
	}
	require.NotEqual(t, JobName("run.A"), JobName("run-a"), "ids that differ in case or punctuation stay apart")
}

func newTestExecutor(t *testing.T, cfg Config) (*Executor, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	if cfg.Namespace == "" {
		cfg.Namespace = "ml"
	}
	if cfg.Installation == "" {
		cfg.Installation = "lab-a"
	}
	cfg.SchedulerURL, cfg.Image, cfg.JobTTL, cfg.StopGrace = "http://atlas.example:5555", "atlas-ce/worker:latest", time.Hour, 10*time.Second
	e, err := newWithClient(t.Context(), cfg, client, "fake")
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e, client
}

func spec(j *atlas.Job) *executor.Spec {
	return &executor.Spec{Job: j, Env: []string{"FOUNDATIONS_JOB_ID=" + j.ID, "FOUNDATIONS_TOKEN=job-secret",
		"FOUNDATIONS_HOME=/srv/atlas", "FOUNDATIONS_SCHEDULER_URL=http+unix://%2Fsrv%2Fatlas%2Fapi.sock", "SEED=7"}}
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func TestTheJobAsksForWhatTheAtlasJobDoes(t *testing.T) {
	e, _ := newTestExecutor(t, Config{Queue: "research", HostNetwork: true})
	job, token := e.jobFor(spec(&atlas.Job{ID: "a1", Project: "p", User: "alice", RAMGB: 0.5, NumGPUs: 2}))
	require.Equal(t, "job-secret", token)
	require.Equal(t, "lab-a", job.Labels[LabelInstallation])
	require.Equal(t, "research", job.Labels[LabelKueueQueue], "handed to the Kueue queue")
	require.Equal(t, "a1", job.Annotations[AnnotationJobID])
	require.Equal(t, int32(0), *job.Spec.BackoffLimit, "a job runs once")
	require.Equal(t, int32(3600), *job.Spec.TTLSecondsAfterFinished)
	pod := job.Spec.Template.Spec
	require.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	require.Equal(t, int64(10), *pod.TerminationGracePeriodSeconds, "the stop grace period")
	require.True(t, pod.HostNetwork)
	require.Equal(t, job.Name, job.Spec.Template.Labels[LabelJob])
	c := pod.Containers[0]
	require.Equal(t, "atlas-ce/worker:latest", c.Image)
	require.Equal(t, []string{"python3", "-c"}, c.Command[:2], "only Python 3 is needed in the image")
	mem := resource.MustParse("512Mi")
	require.True(t, mem.Equal(c.Resources.Limits[corev1.ResourceMemory]), "ram is the memory limit")
	require.True(t, mem.Equal(c.Resources.Requests[corev1.ResourceMemory]), "and request")
	gpus := c.Resources.Limits[gpu]
	require.Equal(t, int64(2), gpus.Value())
	require.Equal(t, corev1.TerminationMessageFallbackToLogsOnError, c.TerminationMessagePolicy)
	env := envOf(c)
	require.Equal(t, "http://atlas.example:5555", env["FOUNDATIONS_SCHEDULER_URL"].Value, "pods reach the server over the network")
	require.NotContains(t, env, "FOUNDATIONS_HOME", "a pod has none of the server's files")
	require.Equal(t, "7", env["SEED"].Value)
	require.Empty(t, env["FOUNDATIONS_TOKEN"].Value, "the token is not in the Job for anyone who reads pods to see")
	require.Equal(t, job.Name, env["FOUNDATIONS_TOKEN"].ValueFrom.SecretKeyRef.Name)

	job, _ = e.jobFor(spec(&atlas.Job{ID: "cpu"}))
	require.Equal(t, "void", envOf(job.Spec.Template.Spec.Containers[0])["NVIDIA_VISIBLE_DEVICES"].Value, "a CPU job sees no GPU")
}

func TestVolumesAreHostPathsUnderTheAllowedRootsOrClaims(t *testing.T) {
	e, _ := newTestExecutor(t, Config{AllowedVolumeRoots: []string{"/data"}})
	ok := &atlas.Job{ID: "v", Worker: atlas.Worker{Volumes: map[string]atlas.Volume{
		"/data/imagenet": {Bind: "/imagenet", Mode: "ro"}, "pvc:checkpoints": {Bind: "/ckpt", Mode: "rw"}}}}
	require.NoError(t, e.Admit(ok))
	for host, want := range map[string]string{"/etc": "allowed_volume_roots", "/data-other": "allowed_volume_roots", "/data/../etc": "allowed_volume_roots", "pvc:": "names no PersistentVolumeClaim"} {
		err := e.Admit(&atlas.Job{Worker: atlas.Worker{Volumes: map[string]atlas.Volume{host: {Bind: "/x"}}}})
		require.ErrorContains(t, err, want, host)
	}
	job, _ := e.jobFor(spec(ok))
	vols := map[string]corev1.Volume{}
	for _, v := range job.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range job.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m
	}
	require.Equal(t, "/data/imagenet", vols[mounts["/imagenet"].Name].HostPath.Path)
	require.True(t, mounts["/imagenet"].ReadOnly)
	require.Equal(t, "checkpoints", vols[mounts["/ckpt"].Name].PersistentVolumeClaim.ClaimName)
	require.False(t, mounts["/ckpt"].ReadOnly)
}

// A Job the informer has not had yet (just created, or found at recovery) is not taken for
// deleted: the API says whether it is there. Once it is gone from the API, it was deleted.
func TestAJobTheInformerHasNotSeenIsAskedOfTheAPI(t *testing.T) {
	e, client := newTestExecutor(t, Config{})
	require.NoError(t, e.Close()) // the informers hear no more: as if they lagged behind
	job, _ := e.jobFor(spec(&atlas.Job{ID: "unseen"}))
	_, err := client.BatchV1().Jobs("ml").Create(t.Context(), job, metav1.CreateOptions{})
	require.NoError(t, err)
	h := e.track(job.Name, &atlas.Job{ID: "unseen"}, time.Now())
	_, done := h.check(t.Context())
	require.False(t, done, "the Job is there: the informer only has not seen it")

	require.NoError(t, client.BatchV1().Jobs("ml").Delete(t.Context(), job.Name, metav1.DeleteOptions{}))
	res, done := h.check(t.Context())
	require.True(t, done)
	require.True(t, res.Lost)
	require.Contains(t, res.Reason, "was deleted by someone else")
}

func TestThePodTemplateIsTheStartingPoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`metadata:
  labels: {team: vision}
  annotations: {sidecar.example/inject: "true"}
spec:
  priorityClassName: research
  containers:
    - name: job
      securityContext: {readOnlyRootFilesystem: true}
      env: [{name: FROM_TEMPLATE, value: "1"}]
    - name: proxy
      image: proxy:1
`), 0o644))
	tmpl, err := LoadPodTemplate(path)
	require.NoError(t, err)
	e, _ := newTestExecutor(t, Config{PodTemplate: tmpl})
	job, _ := e.jobFor(spec(&atlas.Job{ID: "t"}))
	pod := job.Spec.Template
	require.Equal(t, "vision", pod.Labels["team"])
	require.Equal(t, job.Name, pod.Labels[LabelJob], "Atlas's labels are added to the template's")
	require.Equal(t, "true", pod.Annotations["sidecar.example/inject"])
	require.Equal(t, "research", pod.Spec.PriorityClassName)
	require.Len(t, pod.Spec.Containers, 2, "the sidecar is kept")
	c := pod.Spec.Containers[0]
	require.Equal(t, "job", c.Name)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem, "the template's settings of the job's container are kept")
	require.Equal(t, "1", envOf(c)["FROM_TEMPLATE"].Value)
	require.Equal(t, "atlas-ce/worker:latest", c.Image, "Atlas sets what runs")
	require.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
	require.Empty(t, tmpl.Labels[LabelJob], "the template itself is not changed")

	require.NoError(t, os.WriteFile(path, []byte("spec:\n  containerz: []\n"), 0o644))
	_, err = LoadPodTemplate(path)
	require.ErrorContains(t, err, "want a pod template")
}

func TestStartKeepsTheTokenInASecretTheJobOwnsAndOrphansGo(t *testing.T) {
	e, client := newTestExecutor(t, Config{})
	ctx := t.Context()
	h, err := e.Start(ctx, spec(&atlas.Job{ID: "s1"}))
	require.NoError(t, err)
	name := JobName("s1")
	require.Contains(t, h.RunInfo(), name)
	sec, err := client.CoreV1().Secrets("ml").Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "job-secret", sec.StringData[secretKey])
	require.Len(t, sec.OwnerReferences, 1, "the Secret goes with its Job")
	require.Equal(t, "Job", sec.OwnerReferences[0].Kind)
	require.Equal(t, name, sec.OwnerReferences[0].Name)

	_, err = e.Start(ctx, spec(&atlas.Job{ID: "s1"}))
	require.NoError(t, err, "a start retried after a restart finds the Job there")

	// Another installation's Job, and one of ours that no Atlas job owns.
	_, err = e.Start(ctx, spec(&atlas.Job{ID: "orphan"}))
	require.NoError(t, err)
	other, _ := newTestExecutor(t, Config{Installation: "lab-b"})
	otherJob, _ := other.jobFor(spec(&atlas.Job{ID: "theirs"}))
	_, err = client.BatchV1().Jobs("ml").Create(ctx, otherJob, metav1.CreateOptions{})
	require.NoError(t, err)
	removed, err := e.RemoveOrphans(ctx, func(id string) bool { return id == "s1" })
	require.NoError(t, err)
	require.Equal(t, []string{"Kubernetes Job " + JobName("orphan")}, removed)
	list, err := client.BatchV1().Jobs("ml").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var left []string
	for _, j := range list.Items {
		left = append(left, j.Name)
	}
	require.ElementsMatch(t, []string{name, otherJob.Name}, left, "another installation's Jobs are not ours to remove")
}
