// Package deploy holds tapwars' Kubernetes and OpenShift manifests
// (deploy/kubernetes) and the test that keeps them valid: every manifest
// decodes strictly into the Kubernetes API types (an unknown or misspelt
// field fails), the Kustomize overlays render, and the settings they pass
// are tapwars' own.
package deploy

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/stream"
)

const root = "kubernetes"

// Strimzi and OpenShift resources, as small structs of the fields tapwars
// uses (no Strimzi or OpenShift Go module needed); strict decoding makes
// any other field an error.

type kafkaTopic struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}

type kafkaUser struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Authentication struct {
			Type string `json:"type"`
		} `json:"authentication"`
		Authorization struct {
			Type string `json:"type"`
			ACLs []struct {
				Resource struct {
					Type        string `json:"type"`
					Name        string `json:"name,omitempty"`
					PatternType string `json:"patternType,omitempty"`
				} `json:"resource"`
				Operations []string `json:"operations"`
				Host       string   `json:"host,omitempty"`
			} `json:"acls"`
		} `json:"authorization"`
	} `json:"spec"`
}

type route struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Host string `json:"host,omitempty"`
		Path string `json:"path,omitempty"`
		To   struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Weight *int32 `json:"weight,omitempty"`
		} `json:"to"`
		Port *struct {
			TargetPort intstr.IntOrString `json:"targetPort"`
		} `json:"port,omitempty"`
		TLS *struct {
			Termination                   string `json:"termination"`
			InsecureEdgeTerminationPolicy string `json:"insecureEdgeTerminationPolicy,omitempty"`
		} `json:"tls,omitempty"`
		WildcardPolicy string `json:"wildcardPolicy,omitempty"`
	} `json:"spec"`
}

// newObject returns the Go type of a manifest's apiVersion and kind.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "kafka.strimzi.io/v1beta2 KafkaTopic":
		return &kafkaTopic{}
	case "kafka.strimzi.io/v1beta2 KafkaUser":
		return &kafkaUser{}
	case "route.openshift.io/v1 Route":
		return &route{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kusttypes.Kustomization{}
	}
	return nil
}

// decodeStrict decodes one YAML document into its API type; unknown
// fields, duplicate keys and unknown kinds are errors.
func decodeStrict(t *testing.T, where string, doc []byte) any {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	obj := newObject(tm.APIVersion, tm.Kind)
	if obj == nil {
		t.Fatalf("%s: unknown kind %q %q: add its type to newObject", where, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s (%s): %v", where, tm.Kind, err)
	}
	return obj
}

// documents splits a YAML file into its documents.
func documents(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

// manifests decodes every YAML file under deploy/kubernetes, by path.
func manifests(t *testing.T) map[string][]any {
	t.Helper()
	out := map[string][]any{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, doc := range documents(b) {
			out[p] = append(out[p], decodeStrict(t, p, doc))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 12 {
		t.Fatalf("only %d manifest files found", len(out))
	}
	return out
}

// only returns the one object of type T in objs.
func only[T any](t *testing.T, objs []any) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

// render builds a kustomization directory as `kubectl apply -k` would and
// decodes every resulting object strictly.
func render(t *testing.T, dir string) []any {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []any
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decodeStrict(t, dir+": "+r.GetKind()+"/"+r.GetName(), y))
	}
	return objs
}

// Every file decodes strictly; every kustomization renders.
func TestManifestsDecodeStrictly(t *testing.T) {
	all := manifests(t)
	for p := range all {
		t.Logf("%s: ok", p)
	}
	// A misspelt field must fail, or this test proves nothing.
	bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1, replica: 2}\n")
	if err := yaml.UnmarshalStrict(bad, &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("strict decoding let an unknown field through: %v", err)
	}
}

func TestOverlaysRender(t *testing.T) {
	kinds := func(objs []any) []string {
		var ks []string
		for _, o := range objs {
			ks = append(ks, typeName(o))
		}
		slices.Sort(ks)
		return ks
	}
	k8s := render(t, filepath.Join(root, "overlays/kubernetes"))
	if got := strings.Join(kinds(k8s), " "); got != "ConfigMap Deployment HorizontalPodAutoscaler Ingress PodDisruptionBudget Service" {
		t.Fatalf("overlays/kubernetes renders %s", got)
	}
	ocp := render(t, filepath.Join(root, "overlays/openshift"))
	if got := strings.Join(kinds(ocp), " "); got != "ConfigMap Deployment HorizontalPodAutoscaler PodDisruptionBudget Route Service" {
		t.Fatalf("overlays/openshift renders %s", got)
	}
	for _, objs := range [][]any{k8s, ocp} {
		d := only[*appsv1.Deployment](t, objs)
		if d.Namespace != "tapwars" || !strings.Contains(d.Spec.Template.Spec.Containers[0].Image, "/tapwars:") {
			t.Fatalf("namespace %q image %q", d.Namespace, d.Spec.Template.Spec.Containers[0].Image)
		}
	}
	strimzi := render(t, filepath.Join(root, "strimzi"))
	for _, o := range strimzi {
		var m metav1.ObjectMeta
		switch v := o.(type) {
		case *kafkaTopic:
			m = v.Metadata
		case *kafkaUser:
			m = v.Metadata
		}
		if m.Namespace != "kafka" || m.Labels["strimzi.io/cluster"] != "my-cluster" {
			t.Fatalf("strimzi resource %s: namespace %q labels %v", m.Name, m.Namespace, m.Labels)
		}
	}
}

func typeName(o any) string {
	switch o.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *corev1.Secret:
		return "Secret"
	case *networkingv1.Ingress:
		return "Ingress"
	case *policyv1.PodDisruptionBudget:
		return "PodDisruptionBudget"
	case *autoscalingv2.HorizontalPodAutoscaler:
		return "HorizontalPodAutoscaler"
	case *route:
		return "Route"
	case *kafkaTopic:
		return "KafkaTopic"
	case *kafkaUser:
		return "KafkaUser"
	}
	return "?"
}

// The Deployment is what the issue asks for, and everything refers to
// what exists: probes, security, resources, selectors, env names that are
// tapwars settings, secret files that the Secret template provides.
func TestDeploymentAndReferences(t *testing.T) {
	all := manifests(t)
	base := func(f string) []any { return all[path.Join(root, "base", f)] }
	d := only[*appsv1.Deployment](t, base("deployment.yaml"))
	cm := only[*corev1.ConfigMap](t, base("configmap.yaml"))
	secret := only[*corev1.Secret](t, base("secret.example.yaml"))
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]

	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Fatal("liveness must probe /healthz and readiness /readyz")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Fatal("resources: cpu and memory requests and a memory limit")
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != nil {
		t.Fatal("the pod must run as non-root without a fixed UID (OpenShift assigns one)")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Fatal("read-only root filesystem, no privilege escalation")
	}
	// tapwars' shutdown takes at most 10 s after SIGTERM, after the preStop pause.
	pause := int64(0)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		pause = c.Lifecycle.PreStop.Sleep.Seconds
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < pause+10+5 {
		t.Fatalf("terminationGracePeriodSeconds %v: too short for a preStop pause of %d s and tapwars' 10 s shutdown", g, pause)
	}
	if cm.Data["ADDR"] != ":"+itoa(c.Ports[0].ContainerPort) {
		t.Fatalf("ADDR %q does not match the container port %d", cm.Data["ADDR"], c.Ports[0].ContainerPort)
	}
	// /metrics: its own listener on every pod interface, a named port that
	// Prometheus' pod discovery scrapes, in no Service (so in no Ingress or
	// Route); the game's port never serves it.
	var metricsPort *corev1.ContainerPort
	for i, p := range c.Ports {
		if p.Name == "metrics" {
			metricsPort = &c.Ports[i]
		}
	}
	if metricsPort == nil || cm.Data["METRICS_ADDR"] != ":"+itoa(metricsPort.ContainerPort) || metricsPort.ContainerPort == c.Ports[0].ContainerPort {
		t.Fatalf("METRICS_ADDR %q needs its own container port named metrics (%v)", cm.Data["METRICS_ADDR"], c.Ports)
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != itoa(metricsPort.ContainerPort) || ann["prometheus.io/path"] != "/metrics" {
		t.Fatalf("the pod template's scrape annotations %v do not point at the metrics port %d", ann, metricsPort.ContainerPort)
	}

	// Env names: every variable the manifests set is a tapwars setting.
	settings := app.SettingNames()
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("%s comes from a Secret as an environment value: mount it and use %s_FILE", e.Name, e.Name)
		}
	}
	for k := range cm.Data {
		names = append(names, k)
	}
	for _, n := range names {
		if !slices.Contains(settings, n) {
			t.Errorf("the manifests set %s, which is not a tapwars setting (app.SettingNames)", n)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cm.Name {
		t.Fatalf("envFrom must name the ConfigMap %s", cm.Name)
	}
	// Every NAME_FILE points into a mounted volume; files of the app's own
	// Secret are keys of the template.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, e := range c.Env {
		if !strings.HasSuffix(e.Name, "_FILE") {
			continue
		}
		dir, key := path.Split(e.Value)
		vol, ok := volumes[mounts[strings.TrimSuffix(dir, "/")]]
		if !ok || vol.Secret == nil {
			t.Errorf("%s=%s is not in a mounted Secret", e.Name, e.Value)
			continue
		}
		if vol.Secret.SecretName == secret.Name {
			if _, ok := secret.StringData[key]; !ok {
				t.Errorf("%s: the Secret template has no key %s", e.Name, key)
			}
		}
	}
	for key := range secret.StringData {
		if !slices.Contains(names, key+"_FILE") {
			t.Errorf("the Secret template's %s is not read by the Deployment (%s_FILE)", key, key)
		}
	}
	if vol, ok := volumes[mounts["/data"]]; !ok || vol.EmptyDir == nil || cm.Data["DATA_DIR"] != "/data" {
		t.Fatal("DATA_DIR must be a writable emptyDir at /data")
	}
	if dir, _ := path.Split(cm.Data["KAFKA_SSL_CA_PATH"]); mounts[strings.TrimSuffix(dir, "/")] == "" {
		t.Fatalf("KAFKA_SSL_CA_PATH %s is not mounted", cm.Data["KAFKA_SSL_CA_PATH"])
	}

	// Selectors and names line up.
	pods := d.Spec.Template.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if pods[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	svc := only[*corev1.Service](t, base("service.yaml"))
	pdb := only[*policyv1.PodDisruptionBudget](t, base("pdb.yaml"))
	hpa := only[*autoscalingv2.HorizontalPodAutoscaler](t, base("hpa.yaml"))
	if !matches(svc.Spec.Selector) || !matches(pdb.Spec.Selector.MatchLabels) || !matches(d.Spec.Selector.MatchLabels) {
		t.Fatal("Service, PodDisruptionBudget and Deployment selectors must match the pod labels")
	}
	if svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name {
		t.Fatal("the Service must target the container's named port")
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.StrVal == metricsPort.Name || p.TargetPort.IntVal == metricsPort.ContainerPort || p.Port == metricsPort.ContainerPort {
			t.Fatalf("the Service exposes the metrics port (%s): /metrics must stay off the public path", p.Name)
		}
	}
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
		t.Fatal("the HPA must scale the Deployment with at least 2 replicas")
	}

	// Ingress and Route: long timeouts, no buffering, to the Service.
	ing := only[*networkingv1.Ingress](t, all[path.Join(root, "overlays/kubernetes/ingress.yaml")])
	for k, v := range map[string]string{
		"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
		"nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
		"nginx.ingress.kubernetes.io/proxy-buffering":    "off",
	} {
		if ing.Annotations[k] != v {
			t.Errorf("Ingress annotation %s = %q, want %q", k, ing.Annotations[k], v)
		}
	}
	if b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service; b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
		t.Fatal("the Ingress must route to the Service's port")
	}
	rt := only[*route](t, all[path.Join(root, "overlays/openshift/route.yaml")])
	if rt.Spec.To.Name != svc.Name || rt.Metadata.Annotations["haproxy.router.openshift.io/timeout"] == "" {
		t.Fatal("the Route must go to the Service with a long timeout")
	}

	// Strimzi: the topic tapwars uses, the user and mechanism it logs in with.
	topic := only[*kafkaTopic](t, all[path.Join(root, "strimzi/kafkatopic.yaml")])
	if topic.Metadata.Name != stream.Topic || topic.Spec.Partitions < 1 || topic.Spec.Config["retention.ms"] == nil {
		t.Fatalf("KafkaTopic %s", topic.Metadata.Name)
	}
	user := only[*kafkaUser](t, all[path.Join(root, "strimzi/kafkauser.yaml")])
	if user.Metadata.Name != cm.Data["KAFKA_USERNAME"] || user.Spec.Authentication.Type != cm.Data["KAFKA_SASL_MECHANISM"] {
		t.Fatalf("KafkaUser %s/%s vs KAFKA_USERNAME %s, KAFKA_SASL_MECHANISM %s",
			user.Metadata.Name, user.Spec.Authentication.Type, cm.Data["KAFKA_USERNAME"], cm.Data["KAFKA_SASL_MECHANISM"])
	}
	if vol := volumes[mounts["/etc/tapwars/kafka-user"]]; vol.Secret == nil || vol.Secret.SecretName != user.Metadata.Name {
		t.Fatal("the Kafka password must come from the Secret the User Operator writes (named after the KafkaUser)")
	}
	var groupACL bool
	for _, a := range user.Spec.Authorization.ACLs {
		groupACL = groupACL || (a.Resource.Type == "group" && a.Resource.Name == cm.Data["KAFKA_GROUP"])
	}
	if !groupACL {
		t.Fatalf("the KafkaUser has no ACL for the group %s", cm.Data["KAFKA_GROUP"])
	}
	// Every topic tapwars uses has a KafkaTopic and the user's ACLs on it.
	cps := only[*kafkaTopic](t, all[path.Join(root, "strimzi/kafkatopic-checkpoints.yaml")])
	if cps.Metadata.Name != stream.CheckpointTopic || cps.Spec.Partitions != 1 || cps.Spec.Config["cleanup.policy"] != "compact" {
		t.Fatalf("KafkaTopic %s: %+v", cps.Metadata.Name, cps.Spec)
	}
	for _, name := range []string{stream.Topic, stream.CheckpointTopic} {
		ops := map[string]bool{}
		for _, a := range user.Spec.Authorization.ACLs {
			if a.Resource.Type == "topic" && a.Resource.Name == name {
				for _, op := range a.Operations {
					ops[op] = true
				}
			}
		}
		if !ops["Describe"] || !ops["Read"] || !ops["Write"] || ops["Create"] {
			t.Fatalf("the KafkaUser's rights on topic %s are %v; want Describe, Read and Write, and no Create", name, ops)
		}
	}
}

// README's configuration table has a row for every setting.
func TestREADMEConfigurationTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := bytes.Cut(b, []byte("## Configuration"))
	table, _, _ = bytes.Cut(table, []byte("\n## "))
	for _, n := range app.SettingNames() {
		if strings.HasSuffix(n, "_FILE") {
			continue // one row explains the NAME_FILE form
		}
		if !bytes.Contains(table, []byte("| `"+n+"` |")) {
			t.Errorf("README's configuration table has no row for %s", n)
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
