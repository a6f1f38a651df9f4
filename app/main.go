// Package app wires tapwars together: configuration, the embedded or
// external Redis and Kafka, the store, the producer and consumer, the live
// hub and the HTTP server. cmd/tapwars and the integration tests both run
// the game through Main.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/embedded"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/handlers"
	"github.com/tapwars/tapwars/ledger"
	"github.com/tapwars/tapwars/live"
	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// Main is one running tapwars instance.
type Main struct {
	Config Config
	Log    *slog.Logger
	// ConsumerOptions, HubOptions and StoreOptions let tests tune the
	// consumer, the hub and the store (e.g. a short online window).
	ConsumerOptions stream.ConsumerOptions
	HubOptions      live.Options
	StoreOptions    store.Options
	LogOutput       io.Writer // default os.Stderr

	redisSrv      *embedded.Redis
	kafkaSrv      *embedded.Kafka
	rdb           redis.UniversalClient
	redisConn     *redisConn // REDIS_URL's client, and how its errors are explained
	Store         *store.Store
	producer      *stream.Producer
	checkpointLog *stream.CheckpointLog // the checkpoints' topic, with its own producer
	// Checkpointer takes and loads checkpoints of the state (nil before Run).
	Checkpointer *ledger.Checkpointer
	Game         *ledger.Game // the game state with every change logged first
	// RoundView is this instance's view of the current round, which taps are
	// judged by (ledger.RoundView).
	RoundView *ledger.RoundView
	consumer  *stream.Consumer
	ends      *stream.Watermarks // the admin page's view of Kafka's end offsets
	Hub       *live.Hub
	srv       *http.Server
	fresh     freshConns // connections that have not sent a request yet
	ln        net.Listener
	debug     *http.Server // DEBUG_ADDR's pprof listener, or nil
	metrics   *http.Server // METRICS_ADDR's /metrics listener, or nil
	metricsLn net.Listener

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeOne sync.Once
}

// The handlers look for the round history on their store (handlers.New):
// the ledger must keep forwarding it from the projection.
var _ interface {
	handlers.Store
	handlers.AdminStore
	RoundResults(ctx context.Context, offset, limit int64) ([]game.RoundResult, int64, error)
} = (*ledger.Game)(nil)

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	m := &Main{}
	_ = m.Config.Parse(nil, func(string) string { return "" }, io.Discard)
	return m
}

// Run starts the instance and returns once it serves; Close stops it. Each
// step starts what the later ones use: the store, the log, the consumer
// that projects the log into the store, the live hub, then the listeners.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	if m.Log == nil {
		m.Log = NewLogger(m.LogOutput, m.Config.LogFormat, m.Config.LogLevel)
	}
	keys, err := m.readKeys()
	if err != nil {
		return err
	}
	if err := m.checkKafkaSecurity(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel

	redisURL, brokers, err := m.startEmbedded(ctx)
	if err != nil {
		return err
	}
	if err := m.openRedis(ctx, redisURL); err != nil {
		return err
	}
	kcfg := m.kafkaConfig(brokers)
	if _, err := stream.EnsureTopics(kcfg, m.Config.KafkaTopics(), m.Log); err != nil {
		return err
	}
	if err := m.openLedger(kcfg); err != nil {
		return err
	}
	if err := m.startConsumer(ctx, runCtx, kcfg); err != nil {
		return err
	}
	m.startCheckpointer(runCtx)
	m.startRoundView(ctx, runCtx)
	m.startRoundKeeper(runCtx)
	m.startHub(runCtx)
	if err := m.startHTTP(runCtx, keys); err != nil {
		return err
	}
	if err := m.startMetrics(); err != nil {
		return err
	}
	if err := m.startDebug(); err != nil {
		return err
	}
	m.logAdminToken(keys)
	return nil
}

// keys are the instance's secrets: the session signing secret and the
// admin token.
type keys struct {
	secret         []byte
	adminToken     string
	adminGenerated bool // generated on this start (logAdminToken says where it is)
}

// readKeys makes DATA_DIR and reads (or generates) the keys kept there.
func (m *Main) readKeys() (k keys, err error) {
	if err := os.MkdirAll(m.Config.DataDir, 0o750); err != nil {
		return keys{}, fmt.Errorf("data dir: %w", err)
	}
	if k.secret, err = m.secret(); err != nil {
		return keys{}, err
	}
	if k.adminToken, k.adminGenerated, err = m.adminToken(); err != nil {
		return keys{}, err
	}
	return k, nil
}

// checkKafkaSecurity refuses KAFKA_SSL/SASL settings that cannot work and
// warns about those that are unsafe.
func (m *Main) checkKafkaSecurity() error {
	c := &m.Config
	ksec := c.KafkaSecurity()
	if err := ksec.Validate(); err != nil {
		return err
	}
	if len(c.KafkaBrokers) == 0 && ksec.Enabled() {
		return game.Errorf(game.EINVALID, "KAFKA_SSL and KAFKA_SASL_MECHANISM apply to an external Kafka: set KAFKA_BROKERS (the embedded broker is plaintext)")
	}
	if ksec.SkipVerify {
		m.Log.Warn("KAFKA_SSL_INSECURE_SKIP_VERIFY is set: the brokers' certificates are not checked, anyone on the path can read and change the taps; use it for development only")
	}
	return nil
}

// startEmbedded starts the embedded Redis and Kafka when REDIS_URL and
// KAFKA_BROKERS are not set, and returns the addresses to use.
func (m *Main) startEmbedded(ctx context.Context) (redisURL string, brokers []string, err error) {
	c := &m.Config
	redisURL = c.RedisURL
	if redisURL == "" {
		m.redisSrv, err = embedded.StartRedis(ctx, embedded.RedisOptions{
			Dir: filepath.Join(c.DataDir, "redis"), Mode: c.EmbeddedRedis, Logger: m.Log})
		if err != nil {
			return "", nil, fmt.Errorf("embedded store: %w", err)
		}
		redisURL = m.redisSrv.URL()
		m.Log.Info("embedded store started", "kind", m.redisSrv.Kind(), "url", redisURL, "dir", filepath.Join(c.DataDir, "redis"))
	}
	brokers = c.KafkaBrokers
	if len(brokers) == 0 {
		m.kafkaSrv, err = embedded.StartKafka(embedded.KafkaOptions{
			Dir: filepath.Join(c.DataDir, "kafka"), Partitions: int32(c.KafkaPartitions),
			Topics: []string{stream.Topic}, Logger: m.Log})
		if err != nil {
			return "", nil, fmt.Errorf("embedded broker: %w", err)
		}
		brokers = m.kafkaSrv.Addrs()
		m.Log.Info("embedded broker started", "addrs", brokers, "dir", filepath.Join(c.DataDir, "kafka"))
	}
	return redisURL, brokers, nil
}

// openRedis connects the store and checks that Redis answers.
func (m *Main) openRedis(ctx context.Context, redisURL string) error {
	redis.SetLogger(redisLogger{m.Log})
	rc, err := newRedisConn(redisURL, m.Config.RedisCAPath)
	if err != nil {
		return err
	}
	if m.Config.RedisURL != "" {
		m.Log.Info("redis", "url", rc.shown)
	}
	m.redisConn = rc
	m.rdb = rc.client
	m.Store = store.NewWithOptions(m.rdb, m.StoreOptions)
	if err := rc.explain(m.Store.Ping(ctx)); err != nil {
		return err
	}
	if n, err := m.Store.HoldNames(ctx); err != nil {
		m.Log.Warn("names of the players in Redis not held: they may be taken again", "err", err)
	} else if n > 0 {
		m.Log.Info("names of the players in Redis held (a state from before names were unique)", "players", n)
	}
	return nil
}

// kafkaConfig is the clients' configuration for brokers.
func (m *Main) kafkaConfig(brokers []string) stream.Config {
	c := &m.Config
	kcfg := stream.Config{Brokers: brokers, Version: c.KafkaVersion, Group: c.KafkaGroup, Compression: c.KafkaCompression}
	if len(c.KafkaBrokers) > 0 {
		kcfg.Security = c.KafkaSecurity()
	}
	return kcfg
}

// openLedger opens the producer the taps and the game's facts are logged
// with, and the checkpoints' own.
func (m *Main) openLedger(kcfg stream.Config) (err error) {
	if m.producer, err = stream.NewProducer(kcfg); err != nil {
		return err
	}
	m.Game = ledger.New(m.Store, stream.NewFacts(m.producer))
	if m.checkpointLog, err = stream.NewCheckpointLog(kcfg); err != nil {
		return err
	}
	m.Checkpointer = ledger.NewCheckpointer(m.Store, m.checkpointLog, m.Log)
	return nil
}

// startConsumer starts the consumer that projects the log into the store
// (loading the newest checkpoint when it rebuilds), marks new partitions,
// and opens the reader of the log's end offsets.
func (m *Main) startConsumer(ctx, runCtx context.Context, kcfg stream.Config) (err error) {
	copt := m.ConsumerOptions
	if copt.Restore == nil && m.Config.CheckpointEvery > 0 {
		// CHECKPOINT_INTERVAL=0 turns checkpoints off both ways: the
		// newest one may be old, so a rebuild replays the whole log.
		copt.Restore = m.Checkpointer.Restore
	}
	if copt.Rebuilt == nil {
		copt.Rebuilt = func() { _ = m.Store.Notify(runCtx) }
	}
	if m.consumer, err = stream.NewConsumer(kcfg, m.Store, m.Log, copt); err != nil {
		return err
	}
	m.Game.Rebuilding = m.consumer.CatchingUp
	if _, _, err := m.Game.MarkPartitions(ctx, time.Now()); err != nil {
		m.Log.Warn("kafka: could not check game-taps for new partitions; will retry", "err", err)
	}
	if m.ends, err = stream.NewWatermarks(kcfg); err != nil {
		return err
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); _ = m.consumer.Run(runCtx) }()
	return nil
}

// startCheckpointer takes a checkpoint every CHECKPOINT_INTERVAL on the
// instance that owns partition 0.
func (m *Main) startCheckpointer(runCtx context.Context) {
	if m.Config.CheckpointEvery <= 0 {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		owner := func() bool { _, ok := m.consumer.Lag()[0]; return ok }
		m.Checkpointer.Run(runCtx, m.Config.CheckpointEvery, owner, m.Game.Rebuilding)
	}()
}

// startRoundView reads the current round, then keeps this instance's view
// of it fresh; a timed round's announcement waits for the view to switch,
// and for the taps judged by the older one to be answered.
func (m *Main) startRoundView(ctx, runCtx context.Context) {
	m.RoundView = ledger.NewRoundView(m.Store, m.Log)
	if l := m.Config.RoundLease; l > 0 {
		m.RoundView.Lease, m.RoundView.Margin = l, l/4
		m.RoundView.Every = min(ledger.DefaultRoundEvery, l/8)
	}
	m.Game.ViewWait = m.RoundView.Lease + m.tapTimeout() + 2*time.Second
	if err := m.RoundView.Heartbeat(ctx); err != nil {
		m.Log.Warn("round view: cannot read the current round yet; taps are refused until it is read", "err", err)
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.RoundView.Run(runCtx) }()
}

// tapTimeout is TAP_TIMEOUT or its default.
func (m *Main) tapTimeout() time.Duration {
	if m.Config.TapTimeout <= 0 {
		return handlers.DefaultTapTimeout
	}
	return m.Config.TapTimeout
}

// startRoundKeeper ends timed rounds with their results and starts the next
// round of a repeating schedule.
func (m *Main) startRoundKeeper(runCtx context.Context) {
	// A tap stamped before the bell is acknowledged or refused within the
	// tap timeout; the margin covers the broker's append.
	settle := m.tapTimeout() + time.Second
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		keeper := ledger.NewRoundKeeper(m.Game, m.ends.HighWatermarks, settle, m.Log)
		keeper.Pending = m.producer.Pending
		keeper.Run(runCtx, 100*time.Millisecond)
	}()
}

// startHub starts the live hub that sends the game to the pages.
func (m *Main) startHub(runCtx context.Context) {
	hubOpt := m.HubOptions
	if hubOpt.CatchingUp == nil {
		hubOpt.CatchingUp = m.consumer.CatchingUp
	}
	m.Hub = live.NewHub(m.Store, m.Log, hubOpt)
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.Hub.Run(runCtx) }()
}

// startHTTP serves the game on ADDR, under the connection caps.
func (m *Main) startHTTP(runCtx context.Context, k keys) error {
	c := &m.Config
	proxies, err := handlers.ParseProxies(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	rc := m.redisConn
	e := handlers.New(m.Game, m.producer, m.Hub, auth.NewSigner(k.secret), m.Log, handlers.Options{
		TapTimeout:          c.TapTimeout,
		PublicURL:           c.PublicURL,
		TapRateLimit:        c.TapRateLimit,
		JoinRateLimit:       c.JoinRateLimit,
		JoinsPerSecond:      c.JoinsPerSecond,
		MaxConnections:      c.MaxConnections,
		MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		Proxies:             proxies,
		AdminToken:          k.adminToken,
		Admin:               m.Game,
		RoundView:           m.RoundView,
		Kafka:               m.ends,
		ConsumerLag:         m.consumer.Lag,
		Context:             runCtx,
		Ready: map[string]handlers.Checker{
			"redis":      func(ctx context.Context) error { return rc.explain(m.Store.Ping(ctx)) },
			"kafka":      m.consumer.Ping,
			"consumer":   m.consumer.Applying,
			"state":      m.consumer.Ready,
			"checkpoint": m.Checkpointer.Ready,
		},
		Details: map[string]func(context.Context) string{
			"checkpoint_age": m.Checkpointer.Age(c.CheckpointEvery),
			"log":            m.consumer.LogDetail,
		},
	})
	m.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: c.HeaderTimeout,
		ReadTimeout:       c.HeaderTimeout + 10*time.Second, // the body has its own 10 s (BodyTimeout)
		WriteTimeout:      30 * time.Second,                 // live streams set their own deadline per write
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelDebug),
		ConnState:         m.fresh.track,
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Addr, err)
	}
	m.ln = handlers.LimitListener(ln, handlers.ListenerLimits{
		Total: m.connectionCap(), PerAddress: c.MaxTCPConnectionsPerIP, Proxies: proxies})
	if c.MaxTCPConnectionsPerIP > 0 && c.MaxTCPConnectionsPerIP < c.MaxConnectionsPerIP {
		// Every live stream is a TCP connection too.
		m.Log.Warn("MAX_TCP_CONNECTIONS_PER_IP is below MAX_CONNECTIONS_PER_IP: an address is refused connections before streams; raise it too",
			"MAX_TCP_CONNECTIONS_PER_IP", c.MaxTCPConnectionsPerIP, "MAX_CONNECTIONS_PER_IP", c.MaxConnectionsPerIP)
	}
	go func() {
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server", "err", err)
		}
	}()
	m.Log.Info("tapwars serving", "url", "http://"+displayAddr(m.ln.Addr()))
	return nil
}

// startMetrics serves /metrics on METRICS_ADDR, when set.
func (m *Main) startMetrics() (err error) {
	if m.Config.MetricsAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	own := prometheus.NewRegistry() // this instance's own values, beside the process's
	own.MustRegister(metrics.NewCheckpointAge(m.checkpointLog.NewestAt))
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{metrics.Registry, own}, promhttp.HandlerOpts{}))
	if m.metrics, m.metricsLn, err = m.serveAside("METRICS_ADDR", m.Config.MetricsAddr, mux); err != nil {
		return err
	}
	m.Log.Info("metrics serving", "url", m.MetricsURL()+"/metrics")
	return nil
}

// startDebug serves pprof on DEBUG_ADDR, when set.
func (m *Main) startDebug() (err error) {
	if m.Config.DebugAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var ln net.Listener
	if m.debug, ln, err = m.serveAside("DEBUG_ADDR", m.Config.DebugAddr, mux); err != nil {
		return err
	}
	m.Log.Info("pprof serving", "url", "http://"+displayAddr(ln.Addr())+"/debug/pprof/")
	return nil
}

// logAdminToken says where the admin page is and where its token comes
// from.
func (m *Main) logAdminToken(k keys) {
	c := &m.Config
	if k.adminGenerated { // logged once: later starts read the file
		// The token itself is never logged: logs are shipped and kept where
		// the token must not be. The file is readable by the owner only.
		m.Log.Info("generated an admin token: log in at the admin URL with the token in the file (set ADMIN_TOKEN to choose one)",
			"url", m.URL()+"/admin", "file", filepath.Join(c.DataDir, "admin.token"))
		return
	}
	from := "ADMIN_TOKEN"
	if c.AdminToken == "" {
		from = filepath.Join(c.DataDir, "admin.token")
	}
	m.Log.Info("admin page", "url", m.URL()+"/admin", "token", "from "+from)
}

// filesKept are the open files MAX_TCP_CONNECTIONS leaves to everything
// else: Redis and Kafka connections, the embedded servers' files, the
// metrics and debug listeners.
const filesKept = 1000

// connectionCap is MAX_TCP_CONNECTIONS, lowered under the file limit: a
// process out of file descriptors can accept nobody, not even the operator.
func (m *Main) connectionCap() int {
	n, files := m.Config.MaxTCPConnections, fileLimit()
	if files <= 0 {
		return n
	}
	most := max(files-filesKept, files/2)
	if n == 0 || n > most {
		if n != 0 {
			m.Log.Warn("MAX_TCP_CONNECTIONS lowered under the file limit: raise ulimit -n to allow more",
				"set", n, "used", most, "file_limit", files)
		}
		return most
	}
	return n
}

// serveAside serves h on addr, a listener apart from the game's: what
// only operators and their tools need (/metrics, pprof) is never exposed
// with the game, and no player's traffic is in its way.
func (m *Main) serveAside(setting, addr string, h http.Handler) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w (give each instance on one host its own)", setting, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln, nil
}

// adminToken returns ADMIN_TOKEN, or the token kept in DATA_DIR/admin.token,
// generating it on first start (generated reports that).
func (m *Main) adminToken() (token string, generated bool, err error) {
	if t := m.Config.AdminToken; t != "" {
		return t, false, nil
	}
	path := filepath.Join(m.Config.DataDir, "admin.token")
	if b, err := os.ReadFile(path); err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < handlers.MinAdminToken {
			return "", false, fmt.Errorf("%s is damaged or too short (under %d characters): delete it to generate a new admin token", path, handlers.MinAdminToken)
		}
		return t, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("generate admin token: %w", err)
	}
	t := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write admin token: %w", err)
	}
	return t, true, nil
}

// Consumer is the instance's member of the consumer group (nil before Run);
// its Lag map lists the partitions it currently owns.
func (m *Main) Consumer() *stream.Consumer { return m.consumer }

// Addr is the address the server listens on (useful with ADDR=127.0.0.1:0).
func (m *Main) Addr() string { return m.ln.Addr().String() }

// MetricsURL is the base URL of the METRICS_ADDR listener ("" when off).
func (m *Main) MetricsURL() string {
	if m.metricsLn == nil {
		return ""
	}
	return "http://" + displayAddr(m.metricsLn.Addr())
}

// URL is the base URL of the server.
func (m *Main) URL() string { return "http://" + displayAddr(m.ln.Addr()) }

func displayAddr(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]:") {
		return "localhost:" + strings.TrimPrefix(s, "[::]:")
	}
	return s
}

// Close stops the instance gracefully: live clients are told to reconnect,
// HTTP requests in flight finish, the producer flushes what it holds, the
// consumer finishes and records the batch it is applying, and the embedded
// servers persist and stop.
func (m *Main) Close() error {
	var errs []error
	m.closeOne.Do(func() {
		if m.Hub != nil {
			m.Hub.Close()
		}
		if m.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m.srv.SetKeepAlivesEnabled(false)
			m.fresh.closeAll()
			if err := m.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
				_ = m.srv.Close()
			}
			cancel()
		}
		if m.debug != nil {
			_ = m.debug.Close()
		}
		if m.metrics != nil {
			_ = m.metrics.Close()
		}
		if m.producer != nil {
			errs = append(errs, m.producer.Close())
		}
		if m.checkpointLog != nil {
			errs = append(errs, m.checkpointLog.Close())
		}
		if m.ends != nil {
			errs = append(errs, m.ends.Close())
		}
		if m.cancel != nil {
			m.cancel()
		}
		if m.consumer != nil {
			errs = append(errs, m.consumer.Close())
		}
		m.wg.Wait()
		if m.rdb != nil {
			errs = append(errs, m.rdb.Close())
		}
		if m.kafkaSrv != nil {
			errs = append(errs, m.kafkaSrv.Close())
		}
		if m.redisSrv != nil {
			errs = append(errs, m.redisSrv.Close())
		}
	})
	return errors.Join(errs...)
}

// secret returns SESSION_SECRET, or the key kept in DATA_DIR/session.key,
// generating it on first start.
func (m *Main) secret() ([]byte, error) {
	if s := m.Config.SessionSecret; s != "" {
		if len(s) < 16 {
			return nil, errors.New("SESSION_SECRET must be at least 16 characters")
		}
		return []byte(s), nil
	}
	path := filepath.Join(m.Config.DataDir, "session.key")
	if b, err := os.ReadFile(path); err == nil {
		key, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) < 16 {
			return nil, fmt.Errorf("%s is damaged: delete it to sign everyone out and generate a new key", path)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read session key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate session key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write session key: %w", err)
	}
	m.Log.Info("generated a session key; set SESSION_SECRET to share one between instances", "path", path)
	return key, nil
}

// NewLogger returns the slog logger for LOG_FORMAT and LOG_LEVEL.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	o := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// redisLogger sends go-redis' own messages (failed dials while Redis is
// down) to slog at debug level; errors reach callers anyway.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// freshConns are the connections that have not sent a request yet. A
// client's HTTP pool dials spare connections under load and may never use
// them; Shutdown waits up to 5 s for such a connection (net/http's rule),
// though it carries nothing, so Close closes them first.
type freshConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != http.StateNew {
		delete(f.m, c)
		return
	}
	if f.m == nil {
		f.m = map[net.Conn]struct{}{}
	}
	f.m[c] = struct{}{}
}

func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.m {
		_ = c.Close()
	}
	clear(f.m)
}
