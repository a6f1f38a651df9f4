package testenv

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/stream"
)

// KafkaJarsCommand fetches the jars StartApacheKafka runs (from Maven
// Central, once, into KafkaJarsDir).
const KafkaJarsCommand = ".ci/kafka-jars.sh (or make kafka-jars)"

// ApacheKafkaOptions shape a real Apache Kafka cluster (KRaft).
type ApacheKafkaOptions struct {
	// Nodes is 1 (one combined broker and controller) or 3 (three combined
	// nodes, a controller quorum of three, replication factor 3 and
	// min.insync.replicas 2); 0 means 1.
	Nodes int
	// SASL serves SCRAM-SHA-512 over TLS (certificates from NewPKI) with a
	// super user whose settings SaramaConfig and Env give.
	SASL bool
	// ACLs turn on the StandardAuthorizer: only the super user may do
	// anything until ACLs are created. Needs SASL.
	ACLs bool
	// BrokerConfig are more server.properties, over the harness's own
	// (e.g. log.segment.ms, broker.session.timeout.ms).
	BrokerConfig map[string]string
}

// ApacheKafka is a cluster of Apache Kafka JVMs owned by one test, on
// loopback ports with temp log dirs. Nodes are numbered from 0; node i has
// node.id i+1.
type ApacheKafka struct {
	t         testing.TB
	opt       ApacheKafkaOptions
	dir       string
	jars      string
	clusterID string
	pki       *PKI
	password  string // the super user's
	nodes     []*kafkaNode
	admin     sarama.ClusterAdmin
}

// clusters maps each running test cluster's first address to it, so the
// topic readers (TopicMessages, ProducerIDs) reach a secured one as its
// super user.
var clusters sync.Map

// readerConfig is the client configuration for reading the topics of
// brokers: the super user's for a test's Apache Kafka, else sarama's
// default (plaintext).
func readerConfig(brokers []string) *sarama.Config {
	if len(brokers) > 0 {
		if k, ok := clusters.Load(brokers[0]); ok {
			return k.(*ApacheKafka).SaramaConfig()
		}
	}
	return sarama.NewConfig()
}

// KafkaSuperUser is the super user of a cluster with SASL.
const KafkaSuperUser = "admin"

type kafkaNode struct {
	id                   int // node.id
	dir                  string
	brokerPort, ctrlPort int
	props, log           string // server.properties and the JVM's output
	cmd                  *exec.Cmd
	exited               chan struct{}
}

// KafkaVersion is the Apache Kafka version the tests run: kafka.version of
// internal/testenv/kafka/pom.xml.
func KafkaVersion() string {
	pom, err := os.ReadFile(filepath.Join(sourceDir(), "kafka", "pom.xml"))
	if err != nil {
		return "unknown"
	}
	m := regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`).FindSubmatch(pom)
	if m == nil {
		return "unknown"
	}
	return string(m[1])
}

// KafkaJarsDir is where .ci/kafka-jars.sh puts the jars: $KAFKA_JARS, or
// ${XDG_CACHE_HOME:-~/.cache}/tapwars/kafka-VERSION.
func KafkaJarsDir() string {
	if d := os.Getenv("KAFKA_JARS"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "tapwars", "kafka-"+KafkaVersion())
}

func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// RequireApacheKafka skips the test when real Kafka cannot run here (no
// jars, no java, or -short), and fails it instead under CI=true, where
// skipping would hide that the real-Kafka tests did not run.
func RequireApacheKafka(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real Apache Kafka tests are slow: skipped with -short")
	}
	var why string
	if _, err := exec.LookPath("java"); err != nil {
		why = "java (17 or later) is not installed"
	} else if _, err := os.Stat(filepath.Join(KafkaJarsDir(), ".complete")); err != nil {
		why = fmt.Sprintf("the Apache Kafka %s jars are not in %s", KafkaVersion(), KafkaJarsDir())
	}
	if why == "" {
		return
	}
	why += "; run " + KafkaJarsCommand + " to fetch them from Maven Central"
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(why)
	}
	t.Skip(why)
}

// StartApacheKafka formats and starts a cluster and waits until every
// broker is in the metadata. It is killed at test end; when the test
// failed, the tail of each node's log is printed.
func StartApacheKafka(t testing.TB, o ApacheKafkaOptions) *ApacheKafka {
	t.Helper()
	RequireApacheKafka(t)
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Nodes != 1 && o.Nodes != 3 {
		t.Fatalf("StartApacheKafka: Nodes is 1 or 3, not %d", o.Nodes)
	}
	if o.ACLs && !o.SASL {
		t.Fatal("StartApacheKafka: ACLs need SASL (without it every client is the same anonymous user)")
	}
	began := time.Now()
	k := &ApacheKafka{t: t, opt: o, dir: t.TempDir(), jars: KafkaJarsDir(), clusterID: randomID(t)}
	if o.SASL {
		k.pki = NewPKI(t)
		k.password = randomID(t)
	}
	t.Cleanup(k.cleanup)
	// Ports are free when picked but another process may take one before
	// Kafka binds it (tests of other packages run at the same time): then
	// start again on other ports.
	for attempt := 1; ; attempt++ {
		ports := pickPorts(t, 2*o.Nodes)
		k.nodes = nil
		for i := range o.Nodes {
			n := &kafkaNode{id: i + 1, dir: filepath.Join(k.dir, fmt.Sprintf("try-%d", attempt), fmt.Sprintf("node-%d", i+1)),
				brokerPort: ports[2*i], ctrlPort: ports[2*i+1], exited: closedChan()}
			n.props = filepath.Join(n.dir, "server.properties")
			n.log = filepath.Join(k.dir, fmt.Sprintf("try-%d", attempt), fmt.Sprintf("node-%d.log", i+1))
			k.nodes = append(k.nodes, n)
		}
		clusters.Store(k.Addrs()[0], k)
		k.writeConfig()
		k.format()
		for i := range k.nodes {
			k.launch(i)
		}
		if !k.waitBrokers(k.nodeIDs(), 120*time.Second) {
			break
		}
		clusters.Delete(k.Addrs()[0])
		for i := range k.nodes {
			k.Kill(i)
		}
		if attempt == 3 {
			t.Fatal("apache kafka: a port was taken by another process three times in a row")
		}
		t.Logf("apache kafka: a port was taken by another process; starting again on other ports")
	}
	t.Logf("apache kafka %s: %d node(s) ready in %v (logs in %s)", KafkaVersion(), o.Nodes, time.Since(began).Round(time.Millisecond), k.dir)
	return k
}

// pickPorts is distinctPorts; a test of the harness replaces it.
var pickPorts = distinctPorts

// distinctPorts are n free ports, no two alike (FreePort may hand out a
// port it just gave).
func distinctPorts(t testing.TB, n int) []int {
	var ports []int
	for len(ports) < n {
		if p := FreePort(t); !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports
}

func closedChan() chan struct{} { c := make(chan struct{}); close(c); return c }

// randomID is a Kafka Uuid in its base64 form (cluster ids), also used as a
// password.
func randomID(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (k *ApacheKafka) writeConfig() {
	t := k.t
	n1 := len(k.nodes)
	var voters []string
	for _, n := range k.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", n.id, n.ctrlPort))
	}
	minISR := min(2, n1)
	common := map[string]string{
		"process.roles":                    "broker,controller",
		"controller.quorum.voters":         strings.Join(voters, ","),
		"controller.listener.names":        "CONTROLLER",
		"inter.broker.listener.name":       "BROKER",
		"listener.security.protocol.map":   "BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"auto.create.topics.enable":        "false",
		"default.replication.factor":       strconv.Itoa(n1),
		"min.insync.replicas":              strconv.Itoa(minISR),
		"num.partitions":                   "1",
		"offsets.topic.replication.factor": strconv.Itoa(n1),
		// 50 partitions by default: creating them on a first consumer
		// group costs seconds on a small machine.
		"offsets.topic.num.partitions":                     "3",
		"transaction.state.log.replication.factor":         strconv.Itoa(n1),
		"transaction.state.log.min.isr":                    strconv.Itoa(minISR),
		"transaction.state.log.num.partitions":             "3",
		"share.coordinator.state.topic.replication.factor": strconv.Itoa(n1),
		"share.coordinator.state.topic.min.isr":            strconv.Itoa(minISR),
		"group.initial.rebalance.delay.ms":                 "0",
		"num.network.threads":                              "2",
		"num.io.threads":                                   "2",
		"num.recovery.threads.per.data.dir":                "1",
		"background.threads":                               "2",
		"log.cleaner.threads":                              "1",
		"unclean.leader.election.enable":                   "false",
	}
	if k.opt.SASL {
		keystore := k.keystore()
		common["listener.security.protocol.map"] = "BROKER:SASL_SSL,CONTROLLER:PLAINTEXT"
		common["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
		common["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-512"
		common["listener.name.broker.scram-sha-512.sasl.jaas.config"] = fmt.Sprintf(
			`org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`, KafkaSuperUser, k.password)
		common["ssl.keystore.type"] = "PEM"
		common["ssl.keystore.location"] = keystore
		common["ssl.truststore.type"] = "PEM"
		common["ssl.truststore.location"] = k.pki.CAFile
		// Brokers reach each other as the super user; the controller
		// listener is plaintext on loopback, where brokers and controllers
		// are the anonymous user.
		common["super.users"] = "User:" + KafkaSuperUser + ";User:ANONYMOUS"
	}
	if k.opt.ACLs {
		common["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	}
	for key, v := range k.opt.BrokerConfig {
		common[key] = v
	}
	for _, n := range k.nodes {
		props := map[string]string{
			"node.id":              strconv.Itoa(n.id),
			"listeners":            fmt.Sprintf("BROKER://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.brokerPort, n.ctrlPort),
			"advertised.listeners": fmt.Sprintf("BROKER://127.0.0.1:%d", n.brokerPort),
			"log.dirs":             filepath.Join(n.dir, "data"),
		}
		for key, v := range common {
			if _, own := props[key]; !own {
				props[key] = v
			}
		}
		keys := make([]string, 0, len(props))
		for key := range props {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		for _, key := range keys {
			// Backslashes are escapes in a .properties file.
			fmt.Fprintf(&b, "%s=%s\n", key, strings.ReplaceAll(props[key], `\`, `\\`))
		}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.props, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// keystore writes the PKI's server certificate and key in the one file a
// PEM keystore reads; Kafka wants the key as PKCS#8.
func (k *ApacheKafka) keystore() string {
	t := k.t
	keyPEM, err := os.ReadFile(k.pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(k.pki.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(k.dir, "keystore.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), cert...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// javaArgs are the JVM's options: a small heap and the serial collector
// (CI has 2 cores and runs several brokers), and quick start-up.
func (k *ApacheKafka) javaArgs(mainClass string, args ...string) []string {
	return append([]string{
		"-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(sourceDir(), "kafka", "log4j2.properties"),
		"-cp", filepath.Join(k.jars, "*"), mainClass,
	}, args...)
}

// format writes each node's storage (cluster id, and the super user's
// SCRAM credentials), all nodes at once.
func (k *ApacheKafka) format() {
	var wg sync.WaitGroup
	errs := make([]error, len(k.nodes))
	for i, n := range k.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"format", "-t", k.clusterID, "-c", n.props}
			if k.opt.SASL {
				args = append(args, "--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", KafkaSuperUser, k.password))
			}
			out, err := exec.Command("java", k.javaArgs("kafka.tools.StorageTool", args...)...).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("format node %d: %v\n%s", n.id, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		k.t.Fatal(err)
	}
}

// launch starts node i's JVM; its output is appended to its log.
func (k *ApacheKafka) launch(i int) {
	t, n := k.t, k.nodes[i]
	select {
	case <-n.exited:
	default:
		t.Fatalf("apache kafka node %d is already running", i)
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "==== testenv: starting node %d at %s\n", i, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("java", k.javaArgs("kafka.Kafka", n.props)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start apache kafka node %d: %v", i, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}(n.exited)
}

func (k *ApacheKafka) nodeIDs() []int32 {
	var ids []int32
	for _, n := range k.nodes {
		ids = append(ids, int32(n.id))
	}
	return ids
}

// waitBrokers polls the metadata until it lists every broker of ids (a
// broker is listed once it is registered and not fenced). It reports
// portTaken when a node exited because its port was in use, and fails the
// test when one exited for another reason or time ran out.
func (k *ApacheKafka) waitBrokers(ids []int32, timeout time.Duration) (portTaken bool) {
	t := k.t
	t.Helper()
	cfg := k.SaramaConfig()
	cfg.Metadata.Retry.Max = 0
	// Short: a port another process holds may accept and never answer.
	cfg.Net.ReadTimeout = 3 * time.Second
	deadline := time.Now().Add(timeout)
	var last string
	for {
		for i, n := range k.nodes {
			if !slices.Contains(ids, int32(n.id)) {
				continue
			}
			// A node that cannot bind takes many seconds to give up: do not
			// wait for it.
			if log, _ := os.ReadFile(n.log); bytes.Contains(log, []byte("Address already in use")) {
				return true
			}
			if isClosed(n.exited) {
				t.Fatalf("apache kafka node %d exited while starting:\n%s", i, tail(n.log, 60))
			}
		}
		if client, err := sarama.NewClient(k.Addrs(), cfg); err != nil {
			last = err.Error()
		} else {
			var have []int32
			for _, b := range client.Brokers() {
				have = append(have, b.ID())
			}
			_ = client.Close()
			missing := slices.DeleteFunc(slices.Clone(ids), func(id int32) bool { return slices.Contains(have, id) })
			if len(missing) == 0 {
				return false
			}
			last = fmt.Sprintf("metadata lists brokers %v, waiting for %v", have, missing)
		}
		if time.Now().After(deadline) {
			k.logTails()
			t.Fatalf("apache kafka not ready after %v: %s", timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Addrs are the bootstrap addresses of every node.
func (k *ApacheKafka) Addrs() []string {
	var out []string
	for _, n := range k.nodes {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", n.brokerPort))
	}
	return out
}

// Addr is node i's broker address.
func (k *ApacheKafka) Addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", k.nodes[i].brokerPort) }

// PKI is the certificate authority of a cluster with SASL (TLS), else nil.
func (k *ApacheKafka) PKI() *PKI { return k.pki }

// Security are tapwars' settings for user and password on this cluster
// (TLS with the PKI's CA, and SCRAM-SHA-512, when SASL is on).
func (k *ApacheKafka) Security(user, password string) stream.Security {
	if !k.opt.SASL {
		return stream.Security{}
	}
	return stream.Security{TLS: true, CAFile: k.pki.CAFile,
		SASLMechanism: stream.SASLScramSHA512, Username: user, Password: password}
}

// SaramaConfig is a client configuration of the super user (tapwars' own
// settings: stream.ClientConfig).
func (k *ApacheKafka) SaramaConfig() *sarama.Config {
	return k.SaramaConfigAs(KafkaSuperUser, k.password)
}

// SaramaConfigAs is SaramaConfig for another user (AddUser).
func (k *ApacheKafka) SaramaConfigAs(user, password string) *sarama.Config {
	cfg, err := stream.ClientConfig(stream.Config{Brokers: k.Addrs(), ClientID: "testenv", Security: k.Security(user, password)})
	if err != nil {
		k.t.Fatalf("sarama config: %v", err)
	}
	return cfg
}

// Env are the app's settings (KAFKA_BROKERS and security) as the super
// user.
func (k *ApacheKafka) Env() map[string]string { return k.EnvAs(KafkaSuperUser, k.password) }

// EnvAs are the app's settings as user (AddUser).
func (k *ApacheKafka) EnvAs(user, password string) map[string]string {
	env := map[string]string{"KAFKA_BROKERS": strings.Join(k.Addrs(), ",")}
	if s := k.Security(user, password); s.Enabled() {
		env["KAFKA_SSL"] = "true"
		env["KAFKA_SSL_CA_PATH"] = s.CAFile
		env["KAFKA_SASL_MECHANISM"] = s.SASLMechanism
		env["KAFKA_USERNAME"] = user
		env["KAFKA_PASSWORD"] = password
	}
	return env
}

// Admin is an admin client of the super user, closed at test end.
func (k *ApacheKafka) Admin() sarama.ClusterAdmin {
	k.t.Helper()
	if k.admin == nil {
		a, err := sarama.NewClusterAdmin(k.Addrs(), k.SaramaConfig())
		if err != nil {
			k.t.Fatalf("kafka admin: %v", err)
		}
		k.admin = a
	}
	return k.admin
}

// AddUser creates (or changes) SCRAM-SHA-512 credentials for name through
// the admin API and waits until every broker accepts them.
func (k *ApacheKafka) AddUser(t testing.TB, name, password string) {
	t.Helper()
	if !k.opt.SASL {
		t.Fatal("AddUser needs a cluster with SASL")
	}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	res, err := k.Admin().UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{{
		Name: name, Mechanism: sarama.SCRAM_MECHANISM_SHA_512, Iterations: 4096, Salt: salt, Password: []byte(password),
	}})
	if err != nil {
		t.Fatalf("add Kafka user %s: %v", name, err)
	}
	for _, r := range res {
		if r.ErrorCode != sarama.ErrNoError {
			t.Fatalf("add Kafka user %s: %v %s", name, r.ErrorCode, deref(r.ErrorMessage))
		}
	}
	cfg := k.SaramaConfigAs(name, password)
	cfg.Metadata.Retry.Max = 0
	Eventually(t, 30*time.Second, func() string {
		for i := range k.nodes {
			b := sarama.NewBroker(k.Addr(i))
			if err := b.Open(cfg); err != nil {
				return err.Error()
			}
			_, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1})
			_ = b.Close()
			if err != nil {
				return fmt.Sprintf("user %s on node %d: %v", name, i, err)
			}
		}
		return ""
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// CreateTopics creates topics with partitions each and the cluster's
// default replication, and waits until each partition has a leader.
func (k *ApacheKafka) CreateTopics(t testing.TB, partitions int32, names ...string) {
	t.Helper()
	for _, name := range names {
		k.CreateTopic(t, name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1})
	}
}

// CreateTopic creates one topic as d says (e.g. a ReplicaAssignment that
// makes one node the preferred leader of every partition) and waits until
// each partition has a leader.
func (k *ApacheKafka) CreateTopic(t testing.TB, name string, d *sarama.TopicDetail) {
	t.Helper()
	if err := k.Admin().CreateTopic(name, d, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	client := k.client(t)
	defer client.Close()
	Eventually(t, 30*time.Second, func() string {
		if err := client.RefreshMetadata(name); err != nil {
			return err.Error()
		}
		parts, err := client.Partitions(name)
		if err != nil {
			return err.Error()
		}
		for _, p := range parts {
			if _, err := client.Leader(name, p); err != nil {
				return fmt.Sprintf("%s/%d: %v", name, p, err)
			}
		}
		return ""
	})
}

// Leader is the node (0-based) that leads topic's partition now.
func (k *ApacheKafka) Leader(t testing.TB, topic string, partition int32) int {
	t.Helper()
	client := k.client(t)
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	b, err := client.Leader(topic, partition)
	if err != nil {
		t.Fatalf("leader of %s/%d: %v", topic, partition, err)
	}
	return int(b.ID()) - 1
}

// InSync are the nodes (0-based) in the in-sync replica set of topic's
// partition.
func (k *ApacheKafka) InSync(t testing.TB, topic string, partition int32) []int {
	t.Helper()
	client := k.client(t)
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	isr, err := client.InSyncReplicas(topic, partition)
	if err != nil {
		t.Fatalf("in-sync replicas of %s/%d: %v", topic, partition, err)
	}
	var out []int
	for _, id := range isr {
		out = append(out, int(id)-1)
	}
	return out
}

func (k *ApacheKafka) client(t testing.TB) sarama.Client {
	t.Helper()
	c, err := sarama.NewClient(k.Addrs(), k.SaramaConfig())
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	return c
}

// Kill stops node i with SIGKILL, like a crash or an OOM kill.
func (k *ApacheKafka) Kill(i int) {
	n := k.nodes[i]
	if n.cmd != nil && !isClosed(n.exited) {
		_ = n.cmd.Process.Kill()
	}
	<-n.exited
}

// Stop shuts node i down gracefully (SIGTERM: a controlled shutdown that
// moves its leaderships away first), killing it after a minute.
func (k *ApacheKafka) Stop(i int) {
	n := k.nodes[i]
	if n.cmd == nil || isClosed(n.exited) {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(time.Minute):
		k.t.Logf("apache kafka node %d did not stop within a minute: killed", i)
		k.Kill(i)
	}
}

// Start restarts a stopped or killed node i on its ports and log dir and
// waits until it is back in the metadata.
func (k *ApacheKafka) Start(i int) {
	k.t.Helper()
	k.launch(i)
	if k.waitBrokers([]int32{int32(k.nodes[i].id)}, 120*time.Second) {
		k.t.Fatalf("apache kafka node %d cannot restart: another process took its port %d or %d", i, k.nodes[i].brokerPort, k.nodes[i].ctrlPort)
	}
}

// Running reports whether node i's JVM is running.
func (k *ApacheKafka) Running(i int) bool { return !isClosed(k.nodes[i].exited) }

// LogFile is node i's log (the JVM's output, all its runs).
func (k *ApacheKafka) LogFile(i int) string { return k.nodes[i].log }

func (k *ApacheKafka) cleanup() {
	if len(k.nodes) > 0 {
		clusters.Delete(k.Addrs()[0])
	}
	if k.admin != nil {
		_ = k.admin.Close()
	}
	if k.t.Failed() {
		k.logTails()
	}
	for i := range k.nodes {
		k.Kill(i)
	}
}

func (k *ApacheKafka) logTails() {
	for i, n := range k.nodes {
		k.t.Logf("---- apache kafka node %d (%s), last lines:\n%s", i, n.log, tail(n.log, 40))
	}
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Allow creates ACLs letting principal (e.g. "User:app") do ops on res,
// from any host, and waits until every broker enforces them.
func (k *ApacheKafka) Allow(t testing.TB, principal string, res sarama.Resource, ops ...sarama.AclOperation) {
	t.Helper()
	var acls []*sarama.Acl
	for _, op := range ops {
		acls = append(acls, &sarama.Acl{Principal: principal, Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow})
	}
	if err := k.Admin().CreateACLs([]*sarama.ResourceAcls{{Resource: res, Acls: acls}}); err != nil {
		t.Fatalf("create ACLs for %s on %v %s: %v", principal, res.ResourceType, res.ResourceName, err)
	}
	cfg := k.SaramaConfig()
	name := res.ResourceName
	Eventually(t, 30*time.Second, func() string {
		for i := range k.nodes {
			b := sarama.NewBroker(k.Addr(i))
			if err := b.Open(cfg); err != nil {
				return err.Error()
			}
			r, err := b.DescribeAcls(&sarama.DescribeAclsRequest{Version: 1, AclFilter: sarama.AclFilter{
				ResourceType: res.ResourceType, ResourceName: &name, ResourcePatternTypeFilter: res.ResourcePatternType,
				Principal: &principal, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny,
			}})
			_ = b.Close()
			if err != nil {
				return err.Error()
			}
			var n int
			for _, ra := range r.ResourceAcls {
				n += len(ra.Acls)
			}
			if n < len(ops) {
				return fmt.Sprintf("node %d has %d of the %d ACLs", i, n, len(ops))
			}
		}
		return ""
	})
}

// AllowApp grants user the ACLs tapwars needs with its default KAFKA_GROUP
// (consumer groups starting "tapwars"): read and write game-taps and
// game-checkpoints, and create game-checkpoints (the app asks for it at
// every start: issue 18, item 3).
func (k *ApacheKafka) AllowApp(t testing.TB, user string) {
	t.Helper()
	principal := "User:" + user
	topic := func(name string) sarama.Resource {
		return sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: name, ResourcePatternType: sarama.AclPatternLiteral}
	}
	k.Allow(t, principal, topic(stream.Topic), sarama.AclOperationRead, sarama.AclOperationWrite, sarama.AclOperationDescribe)
	k.Allow(t, principal, topic(stream.CheckpointTopic), sarama.AclOperationRead, sarama.AclOperationWrite, sarama.AclOperationDescribe, sarama.AclOperationCreate)
	k.Allow(t, principal, sarama.Resource{ResourceType: sarama.AclResourceGroup, ResourceName: "tapwars", ResourcePatternType: sarama.AclPatternPrefixed},
		sarama.AclOperationRead, sarama.AclOperationDescribe)
}
