// Package kubernetes runs each Atlas job as a batch/v1 Job on a Kubernetes cluster, through
// client-go. Its jobs need nothing but HTTP: the pod's first process is python.Bootstrap,
// whose in-job side fetches the bundle, ships the output, uploads the archive and reports how
// the command ended over the API (executor.Remote).
//
// The executor watches its Jobs, their pods and the pods' events with informers filtered by a
// label of this Atlas installation, so several installations can share a cluster. Watches are
// lossy: each job's state is recomputed from the informers' stores on every change and on a
// periodic resync, never from single events. A job the cluster cannot place shows the
// scheduler's reason as its "why pending"; image pull errors fail it at once; OOMKilled,
// Evicted and DeadlineExceeded become the failure reason. Stop deletes the pod with the grace
// period (SIGTERM, grace, kill), then the Job. After a restart, jobs are found again by their
// Job name, and Jobs no Atlas job owns are deleted. No other package talks to Kubernetes.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/python"
)

// Labels and annotations of the objects the executor makes.
const (
	// LabelInstallation names the Atlas installation that owns a Job (and its pods).
	LabelInstallation = "atlas.io/installation"
	// LabelJob is the Job's name, on the Job and its pods.
	LabelJob = "atlas.io/job"
	// AnnotationJobID is the Atlas job id, exactly.
	AnnotationJobID = "atlas.io/job-id"
	// LabelKueueQueue hands a Job to a Kueue LocalQueue.
	LabelKueueQueue = "kueue.x-k8s.io/queue-name"

	// ContainerName is the job's container in its pod (a pod template may add others).
	ContainerName = "job"
	atlasDir      = "/atlas" // an emptyDir: the working directory and the spool
	envDir        = "/atlas-env"
	gpu           = corev1.ResourceName("nvidia.com/gpu")
	secretKey     = "token" // the job's token, in the Secret named as its Job

	byJob = "atlas-job" // the index of pods by their Job's name
	byPod = "atlas-pod" // the index of events by the pod they are about
)

// Config is where and how jobs run.
type Config struct {
	// Kubeconfig is the cluster's kubeconfig file ("": in-cluster).
	Kubeconfig string
	Namespace  string
	// Installation tells this Atlas installation's objects from others'.
	Installation string
	// SchedulerURL is how pods reach the server's API.
	SchedulerURL string
	// Image is the image of jobs that name none.
	Image           string
	ImagePullPolicy corev1.PullPolicy
	ServiceAccount  string
	NodeSelector    map[string]string
	Tolerations     []corev1.Toleration
	HostNetwork     bool
	// EnvCacheClaim names a PersistentVolumeClaim that caches requirements environments.
	EnvCacheClaim string
	// Queue is a Kueue LocalQueue.
	Queue string
	// JobTTL keeps finished Jobs, so a restarted server still reads how they ended.
	JobTTL time.Duration
	// PodTemplate is what the pods start from (LoadPodTemplate); nil: nothing.
	PodTemplate *corev1.PodTemplateSpec
	// StopGrace is the pods' termination grace period.
	StopGrace time.Duration
	// AllowedVolumeRoots are the host paths worker.volumes may mount (as hostPath); a volume
	// named "pvc:<claim>" mounts a PersistentVolumeClaim.
	AllowedVolumeRoots []string
	Logger             *slog.Logger
}

// LoadPodTemplate reads a pod template (a PodTemplateSpec: metadata and spec, as YAML or JSON)
// that the jobs' pods start from.
func LoadPodTemplate(path string) (*corev1.PodTemplateSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubernetes.pod_template: %w", err)
	}
	var t corev1.PodTemplateSpec
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return nil, fmt.Errorf("kubernetes.pod_template: %s: want a pod template (metadata, spec): %s", path, atlas.OneLine(err))
	}
	return &t, nil
}

// Executor runs jobs as Kubernetes Jobs.
type Executor struct {
	cfg     Config
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	jobs    cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	events  cache.SharedIndexInformer
	stop    chan struct{}

	mu      sync.Mutex
	handles map[string]*handle // by Job name
}

var (
	_ executor.Cluster = (*Executor)(nil)
	_ executor.Cleaner = (*Executor)(nil)
)

// New connects to the cluster, checks that the namespace's Jobs can be listed, and starts the
// informers.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %v", atlas.OneLine(err))
	}
	rc.QPS, rc.Burst = 50, 100
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %v", atlas.OneLine(err))
	}
	return newWithClient(ctx, cfg, client, rc.Host)
}

func newWithClient(ctx context.Context, cfg Config, client kubernetes.Interface, host string) (*Executor, error) {
	sel := labels.Set{LabelInstallation: cfg.Installation}.String()
	check, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := client.BatchV1().Jobs(cfg.Namespace).List(check, metav1.ListOptions{LabelSelector: sel, Limit: 1}); err != nil {
		return nil, fmt.Errorf("kubernetes: cannot list Jobs in namespace %s at %s: %s", cfg.Namespace, host, atlas.OneLine(err))
	}
	e := &Executor{cfg: cfg, client: client, stop: make(chan struct{}), handles: map[string]*handle{}}
	e.factory = informers.NewSharedInformerFactoryWithOptions(client, 30*time.Second, informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			if o.FieldSelector == "" { // events carry no labels; they are picked by their pod
				o.LabelSelector = sel
			}
		}))
	e.jobs = e.factory.Batch().V1().Jobs().Informer()
	e.pods = e.factory.Core().V1().Pods().Informer()
	e.events = informers.NewSharedInformerFactoryWithOptions(client, 30*time.Second, informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "involvedObject.kind=Pod" })).
		Core().V1().Events().Informer()
	// A handle looks up its own pod and its pod's events, not the namespace's.
	if err := e.pods.AddIndexers(cache.Indexers{byJob: func(obj any) ([]string, error) {
		return []string{obj.(*corev1.Pod).Labels[LabelJob]}, nil
	}}); err != nil {
		return nil, err
	}
	if err := e.events.AddIndexers(cache.Indexers{byPod: func(obj any) ([]string, error) {
		return []string{obj.(*corev1.Event).InvolvedObject.Name}, nil
	}}); err != nil {
		return nil, err
	}
	poke := func(obj any) { e.poke(obj) }
	for _, inf := range []cache.SharedIndexInformer{e.jobs, e.pods, e.events} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: poke,
			UpdateFunc: func(_, obj any) { poke(obj) }, DeleteFunc: poke}); err != nil {
			return nil, err
		}
		go inf.Run(e.stop)
	}
	if !cache.WaitForCacheSync(ctx.Done(), e.jobs.HasSynced, e.pods.HasSynced, e.events.HasSynced) {
		close(e.stop)
		return nil, errors.New("kubernetes: the watches of Jobs, pods and events did not start")
	}
	return e, nil
}

// Close stops the informers.
func (e *Executor) Close() error {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	return nil
}

// Name implements executor.Executor.
func (e *Executor) Name() string { return "kubernetes" }

// Remote implements executor.Remote.
func (e *Executor) Remote() {}

// Describe says where jobs run.
func (e *Executor) Describe() string {
	return fmt.Sprintf("jobs run as Kubernetes Jobs in namespace %s; pods reach the server at %s", e.cfg.Namespace, e.cfg.SchedulerURL)
}

// poke wakes the handle of the Job an object belongs to.
func (e *Executor) poke(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	name := ""
	switch o := obj.(type) {
	case *batchv1.Job:
		name = o.Name
	case *corev1.Pod:
		name = o.Labels[LabelJob]
	case *corev1.Event:
		name = jobOfPod(o.InvolvedObject.Name)
	}
	e.mu.Lock()
	h := e.handles[name]
	e.mu.Unlock()
	if h != nil {
		h.wake()
	}
}

// jobOfPod is the Job name of a pod name ("<job>-<suffix>").
func jobOfPod(pod string) string {
	if i := strings.LastIndexByte(pod, '-'); i > 0 {
		return pod[:i]
	}
	return pod
}

var notName = regexp.MustCompile(`[^a-z0-9-]+`)

// JobName is the Kubernetes Job of an Atlas job: a DNS label made of the id, with a hash of it
// so that ids that differ only in case or punctuation stay apart.
func JobName(id string) string {
	sum := sha256.Sum256([]byte(id))
	base := strings.Trim(notName.ReplaceAllString(strings.ToLower(id), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	return "atlas-" + base + "-" + hex.EncodeToString(sum[:])[:8]
}

// Admit refuses, at submit, what a Kubernetes job cannot have: host paths outside the allowed
// roots (a volume named "pvc:<claim>" mounts a claim instead).
func (e *Executor) Admit(j *atlas.Job) error {
	for host := range j.Worker.Volumes {
		if strings.HasPrefix(host, "pvc:") {
			if strings.TrimPrefix(host, "pvc:") == "" {
				return atlas.Invalidf("worker.volumes: %q names no PersistentVolumeClaim", host)
			}
			continue
		}
		if !atlas.UnderRoot(host, e.cfg.AllowedVolumeRoots) {
			return atlas.Deniedf("worker.volumes: %s: on Kubernetes a job mounts a host path under allowed_volume_roots "+
				"(%s), or a claim written pvc:<name>", host, strings.Join(e.cfg.AllowedVolumeRoots, ", "))
		}
	}
	return nil
}

// runInfo is what Recover needs: the Job's name.
type runInfo struct {
	executor.Worker
	Job string `json:"job"`
}

// Start implements executor.Executor: it creates the Job and returns at once.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (executor.Handle, error) {
	job, token := e.jobFor(spec)
	h := e.track(job.Name, spec.Job, time.Now())
	fail := func(what string, err error) (executor.Handle, error) {
		e.untrack(job.Name)
		return nil, fmt.Errorf("%s %s: %s", what, job.Name, atlas.OneLine(err))
	}
	// The job's token is a Secret, not part of the Job anyone who may read pods can see. It
	// exists before the pod needs it, and goes with the Job (its owner).
	secrets := e.client.CoreV1().Secrets(e.cfg.Namespace)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: job.Name, Labels: job.Labels, Annotations: job.Annotations},
		StringData: map[string]string{secretKey: token}}
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fail("create Kubernetes Secret", err)
	}
	created, err := e.client.BatchV1().Jobs(e.cfg.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // a start retried after a restart: the Job is there
		created, err = e.client.BatchV1().Jobs(e.cfg.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	}
	if err != nil {
		_ = secrets.Delete(context.WithoutCancel(ctx), job.Name, metav1.DeleteOptions{})
		return fail("create Kubernetes Job", err)
	}
	owner, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "batch/v1", Kind: "Job", Name: created.Name, UID: created.UID}}}})
	if _, err := secrets.Patch(ctx, job.Name, types.MergePatchType, owner, metav1.PatchOptions{}); err != nil {
		e.cfg.Logger.Warn("the job's Secret may outlive its Job", "secret", job.Name, "err", atlas.OneLine(err))
	}
	return h, nil
}

// jobFor is the Job that runs an Atlas job, and the job's token, which goes in a Secret.
func (e *Executor) jobFor(spec *executor.Spec) (*batchv1.Job, string) {
	j := spec.Job
	name := JobName(j.ID)
	lbl := map[string]string{LabelInstallation: e.cfg.Installation, LabelJob: name}
	jobLabels := maps.Clone(lbl)
	if e.cfg.Queue != "" {
		jobLabels[LabelKueueQueue] = e.cfg.Queue
	}
	image := j.Worker.Image
	if image == "" {
		image = e.cfg.Image
	}
	env := []corev1.EnvVar{}
	token := ""
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "FOUNDATIONS_SCHEDULER_URL", "FOUNDATIONS_HOME":
			continue // the pod reaches the server over the network, and has none of its files
		case "FOUNDATIONS_TOKEN":
			token = v
			env = append(env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: secretKey}}})
			continue
		}
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	env = append(env, corev1.EnvVar{Name: "FOUNDATIONS_SCHEDULER_URL", Value: e.cfg.SchedulerURL},
		corev1.EnvVar{Name: "ATLAS_WORK_DIR", Value: atlasDir + "/work"},
		corev1.EnvVar{Name: "ATLAS_SPOOL_DIR", Value: atlasDir + "/spool"},
		corev1.EnvVar{Name: "PYTHONUNBUFFERED", Value: "1"},
		corev1.EnvVar{Name: "ATLAS_IMAGE", Value: image}) // a key of cached requirements environments
	res := corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
	if j.RAMGB > 0 {
		mem := resource.NewQuantity(int64(j.RAMGB*(1<<30)), resource.BinarySI)
		res.Limits[corev1.ResourceMemory], res.Requests[corev1.ResourceMemory] = *mem, *mem
	}
	if j.NumGPUs > 0 {
		n := resource.NewQuantity(int64(j.NumGPUs), resource.DecimalSI)
		res.Limits[gpu], res.Requests[gpu] = *n, *n
	} else {
		env = append(env, corev1.EnvVar{Name: "NVIDIA_VISIBLE_DEVICES", Value: "void"})
	}
	mounts := []corev1.VolumeMount{{Name: "atlas", MountPath: atlasDir}}
	volumes := []corev1.Volume{{Name: "atlas", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if e.cfg.EnvCacheClaim != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "atlas-env", MountPath: envDir})
		volumes = append(volumes, corev1.Volume{Name: "atlas-env", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: e.cfg.EnvCacheClaim}}})
		env = append(env, corev1.EnvVar{Name: "ATLAS_ENV_DIR", Value: envDir})
	}
	for i, host := range slices.Sorted(maps.Keys(j.Worker.Volumes)) {
		v := j.Worker.Volumes[host]
		vol := corev1.Volume{Name: "volume-" + strconv.Itoa(i)}
		if claim, ok := strings.CutPrefix(host, "pvc:"); ok {
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: v.Mode == "ro"}
		} else {
			kind := corev1.HostPathDirectoryOrCreate
			vol.HostPath = &corev1.HostPathVolumeSource{Path: host, Type: &kind}
		}
		volumes = append(volumes, vol)
		mounts = append(mounts, corev1.VolumeMount{Name: vol.Name, MountPath: v.Bind, ReadOnly: v.Mode == "ro"})
	}
	grace := int64(e.cfg.StopGrace / time.Second)
	ttl := int32(e.cfg.JobTTL / time.Second)
	zero := int32(0)
	var tmpl corev1.PodTemplateSpec
	if e.cfg.PodTemplate != nil {
		tmpl = *e.cfg.PodTemplate.DeepCopy()
	}
	pod := tmpl.Spec
	pod.RestartPolicy = corev1.RestartPolicyNever
	pod.TerminationGracePeriodSeconds = &grace
	pod.Volumes = append(pod.Volumes, volumes...)
	if e.cfg.ServiceAccount != "" {
		pod.ServiceAccountName = e.cfg.ServiceAccount
	}
	if len(e.cfg.NodeSelector) > 0 {
		pod.NodeSelector = e.cfg.NodeSelector
	}
	pod.Tolerations = append(pod.Tolerations, e.cfg.Tolerations...)
	pod.HostNetwork = pod.HostNetwork || e.cfg.HostNetwork
	// The job's container: the template's container named "job" gives what it sets (a
	// security context, more resources); Atlas sets the rest. Other containers are sidecars.
	c := corev1.Container{}
	if i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == ContainerName }); i >= 0 {
		c = pod.Containers[i]
		pod.Containers = slices.Delete(slices.Clone(pod.Containers), i, i+1)
	}
	c.Name, c.Image, c.Command, c.Args = ContainerName, image, []string{"python3", "-c", python.Bootstrap()}, nil
	if e.cfg.ImagePullPolicy != "" {
		c.ImagePullPolicy = e.cfg.ImagePullPolicy
	}
	c.Env = append(c.Env, env...)
	c.VolumeMounts = append(c.VolumeMounts, mounts...)
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	maps.Copy(c.Resources.Limits, res.Limits)
	maps.Copy(c.Resources.Requests, res.Requests)
	// A crash before the in-job side could ship anything still leaves the end of its output
	// in the pod's status.
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	pod.Containers = append([]corev1.Container{c}, pod.Containers...)
	if e.cfg.HostNetwork {
		pod.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	if j.RunAs != "" {
		if acct, err := executor.ParseAccount(j.RunAs); err == nil && acct.UID != 0 {
			uid, gid := int64(acct.UID), int64(acct.GID)
			if pod.SecurityContext == nil {
				pod.SecurityContext = &corev1.PodSecurityContext{}
			}
			pod.SecurityContext.RunAsUser, pod.SecurityContext.RunAsGroup, pod.SecurityContext.FSGroup = &uid, &gid, &gid
		}
	}
	podMeta := tmpl.ObjectMeta
	podMeta.Labels = maps.Clone(podMeta.Labels)
	if podMeta.Labels == nil {
		podMeta.Labels = map[string]string{}
	}
	maps.Copy(podMeta.Labels, lbl)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.cfg.Namespace, Labels: jobLabels,
			Annotations: map[string]string{AnnotationJobID: j.ID, "atlas.io/project": j.Project, "atlas.io/user": j.User}},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &zero,
			TTLSecondsAfterFinished: &ttl,
			Template:                corev1.PodTemplateSpec{ObjectMeta: podMeta, Spec: pod},
		},
	}, token
}

// track registers a handle for a Job created at created (zero: by an earlier server process),
// so that the informers wake it.
func (e *Executor) track(name string, j *atlas.Job, created time.Time) *handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.handles[name]
	if h == nil {
		h = &handle{Placement: executor.NewPlacement(created, ""), e: e, name: name, ramGB: j.RAMGB,
			woken: make(chan struct{}, 1), ended: make(chan struct{})}
		e.handles[name] = h
	}
	return h
}

func (e *Executor) untrack(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.handles, name)
}

// Recover implements executor.Executor: it finds the Job by its name.
func (e *Executor) Recover(ctx context.Context, job *atlas.Job, _ string) (executor.Handle, error) {
	var ri runInfo
	if err := json.Unmarshal([]byte(job.RunInfo), &ri); err != nil || ri.Job == "" {
		return nil, fmt.Errorf("%w: no Kubernetes Job recorded for job %s", executor.ErrGone, job.ID)
	}
	// The informers have synced: the API is asked only about a Job they do not have.
	if _, ok, _ := e.jobs.GetStore().GetByKey(e.cfg.Namespace + "/" + ri.Job); ok {
		return e.track(ri.Job, job, time.Time{}), nil
	}
	if _, err := e.client.BatchV1().Jobs(e.cfg.Namespace).Get(ctx, ri.Job, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: Kubernetes Job %s is gone", executor.ErrGone, ri.Job)
		}
		return nil, err
	}
	return e.track(ri.Job, job, time.Time{}), nil
}

// RemoveOrphans implements executor.Cleaner: it deletes this installation's Jobs (and job
// Secrets) that no Atlas job owns.
func (e *Executor) RemoveOrphans(ctx context.Context, known func(jobID string) bool) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: labels.Set{LabelInstallation: e.cfg.Installation}.String()}
	jobs, err := e.client.BatchV1().Jobs(e.cfg.Namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, j := range jobs.Items {
		if known(j.Annotations[AnnotationJobID]) {
			continue
		}
		if err := e.deleteJob(ctx, j.Name, nil); err != nil {
			return removed, err
		}
		removed = append(removed, "Kubernetes Job "+j.Name)
	}
	secrets, err := e.client.CoreV1().Secrets(e.cfg.Namespace).List(ctx, sel)
	if err != nil {
		return removed, err
	}
	for _, sec := range secrets.Items {
		if known(sec.Annotations[AnnotationJobID]) || len(sec.OwnerReferences) > 0 {
			continue // the owner's deletion takes it
		}
		err := e.client.CoreV1().Secrets(e.cfg.Namespace).Delete(ctx, sec.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return removed, err
		}
		removed = append(removed, "Kubernetes Secret "+sec.Name)
	}
	return removed, nil
}

// deleteJob deletes a Job and, in the background, its pods.
func (e *Executor) deleteJob(ctx context.Context, name string, grace *int64) error {
	bg := metav1.DeletePropagationBackground
	err := e.client.BatchV1().Jobs(e.cfg.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg,
		GracePeriodSeconds: grace})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// handle follows one Job. Its Placement says why the pod waits, and when its container
// started.
type handle struct {
	*executor.Placement
	e     *Executor
	name  string
	ramGB float64
	woken chan struct{}

	ended   chan struct{} // closed once Wait saw the end
	endOnce sync.Once
	stopped atomic.Bool
	seenPod atomic.Bool
	seenJob atomic.Bool // the informer has had the Job: from then on, its absence there is its deletion
}

var _ executor.Placer = (*handle)(nil)

func (h *handle) wake() {
	select {
	case h.woken <- struct{}{}:
	default:
	}
}

// RunInfo implements executor.Handle.
func (h *handle) RunInfo() string {
	b, _ := json.Marshal(runInfo{Worker: executor.Worker{Worker: "Kubernetes Job " + h.name}, Job: h.name})
	return string(b)
}

// Wait implements executor.Handle.
func (h *handle) Wait(ctx context.Context) (executor.Result, error) {
	resync := time.NewTicker(10 * time.Second) // the informers' stores are the truth; events only wake us
	defer resync.Stop()
	for {
		if res, done := h.check(ctx); done {
			h.Done()
			h.endOnce.Do(func() { close(h.ended) })
			return res, nil
		}
		select {
		case <-ctx.Done():
			return executor.Result{}, ctx.Err()
		case <-h.woken:
		case <-resync.C:
		}
	}
}

// check looks at the Job, its pod and the pod's events, and says whether (and how) the job
// ended.
func (h *handle) check(ctx context.Context) (executor.Result, bool) {
	e := h.e
	obj, jobExists, _ := e.jobs.GetStore().GetByKey(e.cfg.Namespace + "/" + h.name)
	pods, _ := e.pods.GetIndexer().ByIndex(byJob, h.name)
	var pod *corev1.Pod
	for _, p := range pods {
		if p := p.(*corev1.Pod); pod == nil || p.CreationTimestamp.After(pod.CreationTimestamp.Time) {
			pod = p
		}
	}
	if pod != nil {
		h.seenPod.Store(true)
		if res, done := h.fromPod(ctx, pod); done {
			return res, true
		}
	}
	if jobExists {
		h.seenJob.Store(true)
	} else {
		if pod != nil {
			return executor.Result{}, false // the pod is still going away
		}
		if !h.seenJob.Load() {
			// The informer may not have caught up with a Job just created or recovered: only the
			// API can say it is gone.
			_, err := e.client.BatchV1().Jobs(e.cfg.Namespace).Get(ctx, h.name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return executor.Result{}, false
			}
		}
		if h.stopped.Load() {
			if h.IsPlaced() {
				return executor.Result{ExitCode: -1, Lost: true, Reason: "its pod went before it reported how it ended"}, true
			}
			return executor.Result{ExitCode: -1, Lost: true, Reason: "it had not started running"}, true
		}
		return executor.Result{ExitCode: -1, Lost: true, Reason: "its Kubernetes Job " + h.name + " was deleted by someone else"}, true
	}
	job := obj.(*batchv1.Job)
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue && (pod == nil || pod.Status.Phase != corev1.PodRunning) {
			if c.Reason == "DeadlineExceeded" {
				return executor.Result{ExitCode: -1, Reason: "the Kubernetes Job's deadline passed (DeadlineExceeded)"}, true
			}
			if pod == nil && h.seenPod.Load() {
				return executor.Result{ExitCode: -1, Lost: true, Reason: "its pod was deleted by someone else (" + c.Reason + ")"}, true
			}
		}
	}
	if pod == nil || pod.Status.Phase == corev1.PodPending {
		h.Waiting(h.whyPending(pod))
	}
	return executor.Result{}, false
}

// fromPod reads how the job's container ended, or why it cannot run.
func (h *handle) fromPod(ctx context.Context, pod *corev1.Pod) (executor.Result, bool) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != ContainerName {
			continue
		}
		if t := cs.State.Terminated; t != nil {
			h.Began(t.StartedAt.Time)
			res := executor.Result{ExitCode: int(t.ExitCode)}
			if t.ExitCode != 0 {
				res.Output = h.output(ctx, pod, t)
			}
			switch {
			case t.Reason == "OOMKilled":
				res.Reason = fmt.Sprintf("killed: out of memory (the job's limit is ram: %g GB; OOMKilled)", h.ramGB)
			case h.stopped.Load() && t.ExitCode == 137:
				res.Killed = true
			case t.Reason == "StartError" || t.Reason == "ContainerCannotRun":
				res.Reason = "the pod cannot start: " + atlas.OneLine(errors.New(t.Message))
			case t.ExitCode != 0 && t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed":
				res.Reason = fmt.Sprintf("exited with code %d (%s)", t.ExitCode, t.Reason)
			}
			return res, true
		}
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError",
				"CreateContainerError":
				// The job cannot start, and would wait forever: fail it now, with the reason.
				_ = h.e.deleteJob(ctx, h.name, nil)
				return executor.Result{ExitCode: -1, Reason: fmt.Sprintf("the pod cannot start: %s: %s", w.Reason,
					atlas.OneLine(errors.New(w.Message)))}, true
			}
		}
		if cs.State.Running != nil {
			h.Running(cs.State.Running.StartedAt.Time)
		}
	}
	if pod.Status.Phase == corev1.PodFailed {
		reason := pod.Status.Reason
		if pod.Status.Message != "" {
			reason += ": " + pod.Status.Message
		}
		if reason == "" {
			reason = "its pod failed"
		}
		if pod.Status.Reason == "Evicted" {
			reason = "evicted: " + pod.Status.Message
		}
		return executor.Result{ExitCode: -1, Reason: atlas.OneLine(errors.New(reason))}, true
	}
	return executor.Result{}, false
}

// output is the end of a failed container's output: from the pod's log while the node still
// has it, else from the container's termination message (the end of its log, by
// FallbackToLogsOnError).
func (h *handle) output(ctx context.Context, pod *corev1.Pod, t *corev1.ContainerStateTerminated) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tail, limit := int64(executor.OutputLines), int64(executor.OutputBytes)
	b, err := h.e.client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: ContainerName,
		TailLines: &tail, LimitBytes: &limit}).DoRaw(ctx)
	if err == nil && len(b) > 0 {
		return string(b)
	}
	return t.Message
}

// whyPending is the cluster's reason a job's pod does not run yet.
func (h *handle) whyPending(pod *corev1.Pod) string {
	if pod == nil {
		return "waiting for Kubernetes to create the Job's pod"
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return "Kubernetes: " + c.Message
		}
	}
	events, _ := h.e.events.GetIndexer().ByIndex(byPod, pod.Name)
	var last *corev1.Event
	for _, o := range events {
		ev := o.(*corev1.Event)
		if ev.Type == corev1.EventTypeWarning &&
			(last == nil || ev.LastTimestamp.After(last.LastTimestamp.Time)) {
			last = ev
		}
	}
	if last != nil {
		return "Kubernetes: " + last.Reason + ": " + last.Message
	}
	return "Kubernetes: the pod is " + strings.ToLower(string(pod.Status.Phase))
}

// Stop implements executor.Handle: the pod gets SIGTERM and is killed when the grace is over,
// then the Job goes. It returns at once; while the cluster cannot be reached, it tries again
// until the job has ended.
func (h *handle) Stop(grace time.Duration) error {
	h.stopped.Store(true)
	go executor.Persist(2*time.Second, func() error { return h.stop(grace) }, func(err error) {
		h.e.cfg.Logger.Warn("stop Kubernetes Job; trying again", "job", h.name, "err", atlas.OneLine(err))
	}, h.ended, h.e.stop)
	return nil
}

func (h *handle) stop(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := int64(grace / time.Second)
	pods, err := h.e.client.CoreV1().Pods(h.e.cfg.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{LabelJob: h.name}.String()})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		err := h.e.client.CoreV1().Pods(h.e.cfg.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &g})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return h.e.deleteJob(ctx, h.name, &g)
}

// Release implements executor.Handle: the Job is deleted once its end is recorded.
func (h *handle) Release() error {
	defer h.e.untrack(h.name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return h.e.deleteJob(ctx, h.name, nil)
}
