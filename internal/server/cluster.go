// The executors of clusters: configuration to executor, and the installation id that tells
// this server's jobs from others' on a shared cluster.

package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/atomicfile"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/executor/kubernetes"
	"github.com/atlasgo/atlas/internal/executor/slurm"
)

// newKubernetes connects to the cluster of the kubernetes: section.
func newKubernetes(ctx context.Context, cfg config.Server, p paths) (*kubernetes.Executor, error) {
	k := cfg.Kubernetes
	id, err := installation(k.Installation, p)
	if err != nil {
		return nil, err
	}
	kc := kubernetes.Config{Kubeconfig: k.Kubeconfig, Namespace: k.Namespace, Installation: id,
		SchedulerURL: k.SchedulerURL, Image: k.Image, ImagePullPolicy: corev1.PullPolicy(k.ImagePullPolicy),
		ServiceAccount: k.ServiceAccount, NodeSelector: k.NodeSelector, HostNetwork: k.HostNetwork,
		EnvCacheClaim: k.EnvCacheClaim, Queue: k.Queue, JobTTL: k.JobTTL, StopGrace: cfg.StopGrace,
		AllowedVolumeRoots: cfg.AllowedVolumeRoots}
	if kc.Image == "" {
		kc.Image = cfg.WorkerImage
	}
	for _, t := range k.Tolerations {
		kc.Tolerations = append(kc.Tolerations, corev1.Toleration{Key: t["key"], Operator: corev1.TolerationOperator(t["operator"]),
			Value: t["value"], Effect: corev1.TaintEffect(t["effect"])})
	}
	if k.PodTemplate != "" {
		if kc.PodTemplate, err = kubernetes.LoadPodTemplate(k.PodTemplate); err != nil {
			return nil, err
		}
	}
	return kubernetes.New(ctx, kc)
}

// newSlurm checks the cluster of the slurm: section.
func newSlurm(ctx context.Context, cfg config.Server, p paths) (*slurm.Executor, error) {
	s := cfg.Slurm
	id, err := installation(s.Installation, p)
	if err != nil {
		return nil, err
	}
	return slurm.New(ctx, slurm.Config{Partition: s.Partition, Account: s.Account, QOS: s.QOS, TimeLimit: s.TimeLimit,
		Sbatch: s.Sbatch, Python: s.Python, Setup: s.Setup, ScratchDir: s.ScratchDir, EnvCacheDir: s.EnvCacheDir,
		SchedulerURL: s.SchedulerURL, Installation: id, RunAs: s.RunAs, GPUGres: s.GPUGres,
		PollInterval: s.PollInterval})
}

// installation is the id of this Atlas installation on a shared cluster: the configured one,
// or the one kept in the data folder, made the first time a cluster executor starts. It
// belongs to the data folder, not the host: a server rescheduled to another pod or host with
// the same data folder still knows its jobs. (The first id is derived from the host name and
// the folder, which is what servers used before it was kept.)
func installation(configured string, p paths) (string, error) {
	if configured != "" {
		return configured, nil
	}
	data, err := os.ReadFile(p.installation())
	if id := strings.TrimSpace(string(data)); err == nil && id != "" {
		return id, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the installation id: %w", err)
	}
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + p.home))
	id := "atlas-" + hex.EncodeToString(sum[:6])
	if err := atomicfile.Write(p.installation(), []byte(id+"\n"), 0o644, true); err != nil {
		return "", fmt.Errorf("keep the installation id: %w", err)
	}
	return id, nil
}

// admission is a cluster executor's own check of jobs at submit (nil for executors on this
// machine: the server's capacity and volume policy apply).
func admission(e executor.Executor) func(*atlas.Job) error {
	if c, ok := e.(executor.Cluster); ok {
		return c.Admit
	}
	return nil
}
