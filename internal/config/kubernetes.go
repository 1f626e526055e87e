// The server config's kubernetes: section, for executor: kubernetes.

package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Kubernetes says where and how jobs run on a Kubernetes cluster.
type Kubernetes struct {
	// Kubeconfig is the kubeconfig file of the cluster ("": the server runs in the cluster and
	// uses its service account).
	Kubeconfig string
	// Namespace holds the jobs' batch/v1 Jobs (default "default").
	Namespace string
	// SchedulerURL is how pods reach the server's API (http:// or https://).
	SchedulerURL string
	// Image is the image of jobs that name none (default: worker_image).
	Image string
	// ImagePullPolicy is Always, IfNotPresent or Never ("": the cluster's default).
	ImagePullPolicy string
	// ServiceAccount runs the jobs' pods ("": the namespace's default).
	ServiceAccount string
	NodeSelector   map[string]string
	// Tolerations of the pods: each a mapping of key, operator, value and effect.
	Tolerations []map[string]string
	// HostNetwork puts pods on their node's network (the server is then reached as on the node).
	HostNetwork bool
	// EnvCacheClaim names a PersistentVolumeClaim that caches requirements environments
	// across jobs ("": each job installs its own).
	EnvCacheClaim string
	// Queue is a Kueue LocalQueue the Jobs are handed to ("": none).
	Queue string
	// JobTTL is how long a finished Job is kept, so a restarted server can still read how it
	// ended (default 24h).
	JobTTL time.Duration
	// PodTemplate is a YAML file holding a pod template (metadata and spec) the jobs' pods
	// start from: sidecars, security contexts, priority classes... ("": none).
	PodTemplate string
	// Installation tells this Atlas installation's Jobs from others' in a shared namespace
	// ("": the one kept in the data folder's installation file).
	Installation string
}

var labelValue = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

var pullPolicies = []string{"", "Always", "IfNotPresent", "Never"}

func (p *parser) kubernetes(n *yaml.Node, key string) (Kubernetes, error) {
	k := Kubernetes{Namespace: "default", JobTTL: 24 * time.Hour}
	if isNull(n) {
		return k, nil
	}
	if n.Kind != yaml.MappingNode {
		return k, p.errf(n, key, "want a mapping (kubeconfig, namespace, scheduler_url...), got %s", kindName(n))
	}
	kvs, err := p.entries(n, key)
	if err != nil {
		return k, err
	}
	for _, kv := range kvs {
		name, v := kv[0].Value, kv[1]
		full := joinKey(key, name)
		switch name {
		case "kubeconfig":
			k.Kubeconfig, err = p.str(v, full)
		case "namespace":
			k.Namespace, err = p.str(v, full)
		case "scheduler_url":
			k.SchedulerURL, err = p.str(v, full)
		case "image":
			k.Image, err = p.str(v, full)
		case "image_pull_policy":
			k.ImagePullPolicy, err = p.str(v, full)
		case "service_account":
			k.ServiceAccount, err = p.str(v, full)
		case "node_selector":
			k.NodeSelector, err = p.strMap(v, full)
		case "tolerations":
			if v.Kind != yaml.SequenceNode {
				return k, p.errf(v, full, "want a list of mappings (key, operator, value, effect), got %s", kindName(v))
			}
			for _, item := range v.Content {
				m, err := p.strMap(deref(item), full)
				if err != nil {
					return k, err
				}
				k.Tolerations = append(k.Tolerations, m)
			}
		case "host_network":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
				return k, p.errf(v, full, "want true or false, got %s", describe(v))
			}
			k.HostNetwork = v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
		case "env_cache_claim":
			k.EnvCacheClaim, err = p.str(v, full)
		case "queue":
			k.Queue, err = p.str(v, full)
		case "pod_template":
			k.PodTemplate, err = p.str(v, full)
		case "installation":
			k.Installation, err = p.str(v, full)
		case "job_ttl":
			k.JobTTL, err = p.duration(v, full, "24h")
		default:
			p.warnf(kv[0], full)
			continue
		}
		if err != nil {
			return k, err
		}
	}
	return k, nil
}

// validate checks the section when jobs run on Kubernetes.
func (k Kubernetes) validate(bad func(key, want string, got any) error) error {
	if u, err := url.Parse(k.SchedulerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("kubernetes", "want kubernetes.scheduler_url: how pods reach this server, e.g. https://atlas.example.org:5555",
			k.SchedulerURL)
	}
	if !slices.Contains(pullPolicies, k.ImagePullPolicy) {
		return bad("kubernetes", "want kubernetes.image_pull_policy Always, IfNotPresent or Never", k.ImagePullPolicy)
	}
	if k.Namespace == "" {
		return bad("kubernetes", "want kubernetes.namespace", k.Namespace)
	}
	if k.Installation != "" && !labelValue.MatchString(k.Installation) {
		return bad("kubernetes", "want kubernetes.installation of at most 63 letters, digits, '-', '_' and '.', "+
			"starting and ending with a letter or digit (a Kubernetes label value)", k.Installation)
	}
	if k.JobTTL < time.Minute {
		return bad("kubernetes", "want kubernetes.job_ttl of a minute or more", k.JobTTL.String())
	}
	for _, t := range k.Tolerations {
		for name := range t {
			if !slices.Contains([]string{"key", "operator", "value", "effect"}, name) {
				return bad("kubernetes", fmt.Sprintf("want tolerations of key, operator, value and effect, not %s", name), name)
			}
		}
	}
	return nil
}
