package kubernetes_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/executor/executortest"
	"github.com/atlasgo/atlas/internal/executor/kubernetes"
	"github.com/atlasgo/atlas/test/clusters"
)

// The executor delivers the contract on a real cluster: pods on the host's network (all
// traffic stays on loopback) reach a server stack in this process with nothing but HTTP, and
// cache requirements environments on a claim.
func TestKubernetesContract(t *testing.T) {
	k := clusters.NeedKubernetes(t)
	executortest.Contract(t, executortest.ContractHarness{CachesEnvironments: true,
		New: func(t *testing.T, s *executortest.Stack) executor.Executor {
			ns := k.Namespace(t)
			e, err := kubernetes.New(t.Context(), kubernetes.Config{Kubeconfig: k.Kubeconfig, Namespace: ns,
				Installation: "contract", SchedulerURL: s.URL, Image: clusters.WorkerImage, ImagePullPolicy: corev1.PullNever,
				HostNetwork: true, JobTTL: time.Hour, StopGrace: 2 * time.Second, EnvCacheClaim: envClaim(t, k, ns)})
			require.NoError(t, err)
			t.Cleanup(func() { e.Close() })
			return e
		}})
}

// envClaim makes a PersistentVolumeClaim in ns, bound to a host directory of the test's own.
func envClaim(t *testing.T, k *clusters.Kubernetes, ns string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o777))
	size := resource.MustParse("1Gi")
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: ns + "-envs"},
		Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain, StorageClassName: "",
			ClaimRef:               &corev1.ObjectReference{Namespace: ns, Name: "envs"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	_, err := k.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = k.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	empty := ""
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "envs", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: &empty, VolumeName: pv.Name,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}}}
	_, err = k.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	require.NoError(t, err)
	return pvc.Name
}
