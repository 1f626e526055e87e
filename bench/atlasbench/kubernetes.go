package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// kube measures jobs on a Kubernetes cluster: submit → running and submit → completed of a
// trivial job, one at a time, next to `kubectl apply` of an equivalent Job (the floor); then
// a queue of jobs drained with a number of them handed to the cluster at once.
func kube(args []string) error {
	fs := flag.NewFlagSet("kubernetes", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "the cluster (scripts/k8s-cluster.sh env prints it)")
	image := fs.String("image", "atlas-ce/worker:latest", "the jobs' image (already on the node: pull policy Never)")
	n := fs.Int("n", 20, "jobs one at a time, and as many kubectl applies")
	drainN := fs.Int("drain", 200, "jobs queued at once and drained")
	workers := fs.Int("w", 10, "jobs handed to the cluster at once")
	fs.Parse(args)
	if *kubeconfig == "" {
		return fmt.Errorf("no cluster: give -kubeconfig or KUBECONFIG (scripts/k8s-cluster.sh up)")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "atlasbench-" + hex.EncodeToString(b)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	defer client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})

	home, _ := os.MkdirTemp("", "atlasbench-k8s-")
	defer os.RemoveAll(home)
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf("executor: kubernetes\nkubernetes:\n  kubeconfig: %s\n  namespace: %s\n  scheduler_url: http://127.0.0.1:%d\n"+
		"  image: %s\n  image_pull_policy: Never\n  host_network: true\n", *kubeconfig, ns, port, *image)
	run, err := startCluster(ctx, home, cfg, port, *workers, "k8s")
	if err != nil {
		return err
	}
	defer run.srv.stop()
	_, total, err := run.oneAtATime(ctx, *n, "Kubernetes", true)
	if err != nil {
		return err
	}

	floorRun, floorDone, err := kubectlFloor(ctx, client, *kubeconfig, ns, *image, *n)
	if err != nil {
		return err
	}
	fmt.Printf("`kubectl apply` of an equivalent Job (python3 -c pass), %d times: apply→running median %.0f ms; apply→complete median %.0f ms, p99 %.0f ms; Atlas submit→completed is %.2f× that\n",
		*n, ms(percentile(floorRun, 0.5)), ms(percentile(floorDone, 0.5)), ms(percentile(floorDone, 0.99)),
		float64(percentile(total, 0.5))/float64(percentile(floorDone, 0.5)))

	return run.drain(ctx, *drainN, *n+1, *workers, "the cluster")
}

// kubectlFloor applies an equivalent Job n times with kubectl, one at a time, and measures
// apply → container running and apply → Complete.
func kubectlFloor(ctx context.Context, client kubernetes.Interface, kubeconfig, ns, image string, n int) (running, complete []time.Duration, err error) {
	zero := int32(0)
	for i := 0; i < n; i++ {
		job := batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%d", i), Namespace: ns},
			Spec: batchv1.JobSpec{BackoffLimit: &zero, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, HostNetwork: true,
				Containers: []corev1.Container{{Name: "job", Image: image, ImagePullPolicy: corev1.PullNever,
					Command: []string{"python3", "-c", "pass"}}}}}}}
		manifest, err := yaml.Marshal(job)
		if err != nil {
			return nil, nil, err
		}
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(string(manifest))
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("kubectl apply: %v: %s", err, out)
		}
		for {
			j, err := client.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
			if err != nil {
				return nil, nil, err
			}
			if j.Status.Succeeded > 0 || j.Status.Failed > 0 {
				complete = append(complete, time.Since(t0))
				pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
				if err != nil || len(pods.Items) == 0 || len(pods.Items[0].Status.ContainerStatuses) == 0 {
					return nil, nil, fmt.Errorf("the pod of %s: %v", job.Name, err)
				}
				if t := pods.Items[0].Status.ContainerStatuses[0].State.Terminated; t != nil {
					running = append(running, t.StartedAt.Sub(t0))
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return running, complete, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
