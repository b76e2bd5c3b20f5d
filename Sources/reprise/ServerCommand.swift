import ArgumentParser
import CAllocator
import Foundation
import Logging
import RepriseArtifacts
import RepriseCore
import RepriseSQL
import RepriseSQLite
import ReprisePostgres
import RepriseServer
import ServiceLifecycle
import CoreMetrics
import Metrics
import Prometheus

/// `reprise server`: takes `mlflow server`'s flags.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the tracking server (MLflow REST API, artifact proxy).",
        discussion: """
            With no flags the server listens on 127.0.0.1:5000 and keeps everything in ./reprise-data/: \
            the SQLite database (reprise.db) and the artifacts (artifacts/). It accepts `mlflow server`'s \
            flags, so existing scripts work unchanged.

            --workers is accepted and ignored: one Reprise process serves every request on all cores, \
            so there are no worker processes to start. --gunicorn-opts, --uvicorn-opts and \
            --waitress-opts are accepted and ignored too, with a note in the log.
            """,
        helpNames: [.long]  // -h is --host, as in `mlflow server`
    )

    @Option(name: [.customShort("h"), .long], help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(name: [.customShort("p"), .long], help: "The port to listen on.")
    var port = 5000

    @Option(help: "Where metadata lives: sqlite:///relative/path.db, sqlite:////absolute/path.db, or postgresql://user:password@host:port/database (also postgresql+psycopg2://…; ?sslmode=require|verify-full&sslrootcert=FILE).")
    var backendStoreURI: String?

    @Option(help: "Connections in the PostgreSQL pool (default: MLFLOW_SQLALCHEMYSTORE_POOL_SIZE, else 20).")
    var dbPoolSize: Int?

    @Option(help: "Serve Prometheus metrics at /metrics (requests and latency by route, store latency, write queue depth). MLflow's flag; its directory argument is accepted and not used (one process, nothing to aggregate).")
    var exposePrometheus: String?

    @Option(help: "Accepted for compatibility; the registry shares the backend store.")
    var registryStoreURI: String?

    @Option(help: "The artifact root for new experiments (default: mlflow-artifacts:/ when serving artifacts). With s3://bucket/prefix runs get s3:// URIs and clients write to the bucket themselves.")
    var defaultArtifactRoot: String?

    @Flag(inversion: .prefixedNo, help: "Serve artifacts through the mlflow-artifacts proxy routes.")
    var serveArtifacts = true

    @Option(help: "Where proxied artifacts are stored: a folder (default: ./reprise-data/artifacts) or s3://bucket/prefix (credentials and endpoint from AWS_* and MLFLOW_S3_ENDPOINT_URL).")
    var artifactsDestination: String?

    @Option(name: [.customShort("w"), .long], help: "Accepted and ignored: one process serves requests on all cores.")
    var workers: String?

    @Option(help: "A prefix for every route, for example /mlflow.")
    var staticPrefix: String?

    @Option(parsing: .unconditional, help: "Accepted and ignored: Reprise does not run under gunicorn.")
    var gunicornOpts: String?

    @Option(parsing: .unconditional, help: "Accepted and ignored: Reprise does not run under uvicorn.")
    var uvicornOpts: String?

    @Option(parsing: .unconditional, help: "Accepted and ignored: Reprise does not run under waitress.")
    var waitressOpts: String?

    @Option(
        help: ArgumentHelp(
            "Comma-separated Host header values to accept (name, name:port, *.domain, or *). Default: localhost and private addresses; other Host headers get 403 (DNS-rebinding defence)."
        ))
    var allowedHosts: String?

    @Option(help: "Comma-separated origins that may call the API from a browser (CORS), or *. Default: localhost origins.")
    var corsAllowedOrigins: String?

    @Option(help: "X-Frame-Options for every response: SAMEORIGIN (default), DENY, or NONE to send none.")
    var xFrameOptions: String?

    @Flag(help: "Turn off the Host check, CORS and the cross-site write check (behind a proxy that does them).")
    var disableSecurityMiddleware = false

    @Flag(help: "Accepted for compatibility; ignored.")
    var dev = false

    @Option(help: "basic-auth turns authentication on (MLflow's flag): users, groups, tokens and per-resource permissions, configured by the INI file MLFLOW_AUTH_CONFIG_PATH names.")
    var appName: String?

    @Flag(help: "The same as --app-name basic-auth.")
    var auth = false

    @Option(help: "Serve HTTPS with this certificate chain (PEM); needs --ssl-keyfile.")
    var sslCertfile: String?

    @Option(help: "The private key (PEM) for --ssl-certfile.")
    var sslKeyfile: String?

    @Option(help: "Accept bearer JWTs from this OpenID Connect issuer (its iss); keys come from its discovery document unless --oidc-jwks-uri is given.")
    var oidcIssuer: String?

    @Option(help: "Where the OIDC issuer publishes its signing keys (JWKS).")
    var oidcJwksUri: String?

    @Option(help: "The aud an OIDC token must carry (the client id registered for Reprise).")
    var oidcAudience: String?

    @Option(help: "The OIDC claim that names the user (default preferred_username, else sub).")
    var oidcUsernameClaim: String?

    @Option(help: "The OIDC claim that lists the user's groups (default groups).")
    var oidcGroupsClaim: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Debug logs one line per request.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func validate() throws {
        guard (1...65535).contains(port) || port == 0 else {
            throw ValidationError("--port must be between 0 and 65535, got \(port).")
        }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("Unknown --log-level '\(logLevel)'.")
        }
        if let appName, appName != "basic-auth" {
            throw ValidationError("Unknown --app-name '\(appName)'. The only app is basic-auth (authentication and permissions).")
        }
        if (sslCertfile == nil) != (sslKeyfile == nil) {
            throw ValidationError("--ssl-certfile and --ssl-keyfile go together: give both to serve HTTPS.")
        }
        for (flag, path) in [("--ssl-certfile", sslCertfile), ("--ssl-keyfile", sslKeyfile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("\(flag) \(path) cannot be read. Give a PEM file this user can read.")
            }
        }
    }

    /// Resolves `sqlite:///rel.db` / `sqlite:////abs.db` into a file path.
    static func sqlitePath(_ uri: String, cwd: String) throws -> String {
        guard uri.hasPrefix("sqlite:///") else {
            let scheme = uri.split(separator: ":").first.map(String.init) ?? uri
            throw ValidationError(
                "Unsupported --backend-store-uri '\(PostgresLocation.redacted(uri))' (\(scheme)). Use sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:password@host:port/database."
            )
        }
        let rest = String(uri.dropFirst("sqlite:///".count))
        guard !rest.isEmpty, rest != ":memory:" else {
            throw ValidationError("--backend-store-uri needs a database file path, for example sqlite:///reprise.db.")
        }
        return rest.hasPrefix("/") ? rest : cwd + "/" + rest
    }

    /// The server secret, kept outside the database: `REPRISE_SECRET_KEY` when set (give every server
    /// sharing a database the same one), else a random key kept in a 0600 file beside the database.
    /// It seals stored secrets, keys the audit chain and signs the UI's CSRF tokens, each under its
    /// own derived key.
    /// Runs `work`, or gives up after `seconds` without waiting for it (a connection attempt the
    /// pool keeps retrying does not end on cancellation); the process exits soon after anyway.
    static func within(seconds: Int64, _ work: @escaping @Sendable () async throws -> Void) async throws {
        let gate = OnceGate()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Task {
                do {
                    try await work()
                    if gate.open() { continuation.resume() }
                } catch {
                    if gate.open() { continuation.resume(throwing: error) }
                }
            }
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                if gate.open() { continuation.resume(throwing: ValidationError("no answer within \(seconds) s (REPRISE_DB_CONNECT_TIMEOUT_S)")) }
            }
        }
    }

    static func postgresLocation(_ uri: String) throws -> PostgresLocation {
        do {
            return try PostgresLocation(uri: uri)
        } catch {
            throw ValidationError("--backend-store-uri: \(error)")
        }
    }

    static func redactedStoreURI(_ uri: String) -> String { PostgresLocation.redacted(uri) }

    /// What to do when --backend-store-uri names a database MLflow made: the import command that
    /// brings it into a store of Reprise's own, then the server command on that store.
    static func mlflowDatabaseMessage(_ database: String, importFrom: String) -> String {
        """
        \(database) was made by MLflow (it has MLflow's alembic_version table). Reprise keeps a schema of its own and has left that database as it was. Bring its experiments, runs, models and registry into a Reprise store, ids unchanged (runs:/ and models:/ URIs keep working), with:

            reprise import mlflow --from \(importFrom) --to sqlite:///reprise.db --artifacts <the folder mlflow server stored artifacts in: its --artifacts-destination, ./mlartifacts by default>

        then start Reprise on that store: reprise server --backend-store-uri sqlite:///reprise.db
        Your MLflow data stays where it is; running the import again brings only what is new.
        """
    }

    /// A store opened and migrated as every command that writes to one opens it: the database
    /// (SQLite file or PostgreSQL), the secret key beside it (or REPRISE_SECRET_KEY), the audit key.
    /// A database MLflow made is refused untouched, with the import command that brings it in.
    struct OpenedStore {
        let store: SQLTrackingStore
        let driver: any SQLDriver
        let keyMaterial: [UInt8]
        let sealer: SecretSealer
    }

    static func openStore(
        backendStoreURI: String?, postgres: PostgresLocation?, dbPath: String, artifactRoot: String, cwd: String, poolSize dbPoolSize: Int?,
        logger: Logger
    ) async throws -> OpenedStore {
        do {
            try FileManager.default.createDirectory(
                atPath: (dbPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("Cannot create the folder for the database at \(dbPath): \(error.localizedDescription)")
        }
        let driver: any SQLDriver
        do {
            if let postgres {
                let env = ProcessInfo.processInfo.environment
                let size = dbPoolSize ?? env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"].flatMap { Int($0) } ?? 20
                guard size >= 1 && size <= 1000 else { throw ValidationError("--db-pool-size must be between 1 and 1000, got \(size).") }
                driver = try PostgresDriver(location: postgres, maxConnections: size, logger: logger)
            } else {
                if try SQLiteDriver.isMLflowDatabase(path: dbPath) {
                    throw ValidationError(Self.mlflowDatabaseMessage(dbPath, importFrom: "sqlite:///" + dbPath))
                }
                driver = try SQLiteDriver(path: dbPath)
            }
        } catch let e as ValidationError {
            throw e
        } catch {
            throw ValidationError("Cannot open the database at \(postgres.map { "\($0.host):\($0.port)/\($0.database)" } ?? dbPath): \(error)")
        }
        let keyFile = Self.keyFile(besideDatabase: dbPath)
        let keyMaterial = try Self.secretKeyMaterial(keyFile: keyFile)
        let sealer = SecretSealer(keyMaterial: keyMaterial)
        let store = SQLTrackingStore(
            driver: driver, artifacts: ArtifactRootPolicy(defaultRoot: artifactRoot, workingDirectory: cwd), secrets: sealer,
            auditKey: AuditKey(keyMaterial: keyMaterial, checkpointFile: dbPath + ".audit-head"))
        do {
            if postgres != nil {
                // A database that does not answer would otherwise keep start-up waiting while the
                // pool retries; say so instead.
                let seconds = Self.environmentInt("REPRISE_DB_CONNECT_TIMEOUT_S", 30)
                try await Self.within(seconds: seconds) { try await store.migrate() }
            } else {
                try await store.migrate()
            }
        } catch is MLflowDatabaseError {
            try? await driver.shutdown()
            throw ValidationError(
                Self.mlflowDatabaseMessage(
                    postgres.map { "\($0.host):\($0.port)/\($0.database)" } ?? dbPath,
                    importFrom: postgres != nil ? "'\(Self.redactedStoreURI(backendStoreURI ?? ""))'" : "sqlite:///" + dbPath))
        } catch {
            if postgres != nil {
                throw ValidationError(
                    "Cannot reach or prepare the PostgreSQL database \(Self.redactedStoreURI(backendStoreURI ?? "")): \(error). Check the host, port, user, password and that the database exists.")
            }
            try? await driver.shutdown()
            throw error
        }
        return OpenedStore(store: store, driver: driver, keyMaterial: keyMaterial, sealer: sealer)
    }

    /// Where the server secret's key file lives: beside the database, in its folder.
    static func keyFile(besideDatabase path: String) -> String { (path as NSString).deletingLastPathComponent + "/reprise-secret.key" }

    static func secretKeyMaterial(keyFile: String) throws -> [UInt8] {
        if let key = ProcessInfo.processInfo.environment["REPRISE_SECRET_KEY"], !key.isEmpty {
            return Array(key.utf8)
        }
        if let existing = FileManager.default.contents(atPath: keyFile), !existing.isEmpty {
            return Array(existing)
        }
        let material = SecretSealer.generateKeyMaterial()
        guard FileManager.default.createFile(atPath: keyFile, contents: Data(material.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw ValidationError("Cannot write the secret key file \(keyFile). Make its folder writable, or set REPRISE_SECRET_KEY.")
        }
        return Array(material.utf8)
    }

    /// A positive whole number from the environment, or the default.
    static func environmentInt(_ name: String, _ fallback: Int64) -> Int64 {
        guard let raw = ProcessInfo.processInfo.environment[name], let v = Int64(raw), v > 0 else { return fallback }
        return v
    }

    static func absolute(_ path: String, cwd: String) -> String {
        var p = path
        if p.hasPrefix("file://") { p = String(p.dropFirst("file://".count)) }
        return Validation.normpath(p.hasPrefix("/") ? p : cwd + "/" + p)
    }

    /// The S3 repositories for an `s3://` artifacts destination and an `s3://` default artifact
    /// root (the destination's own repository when the root lies under it), destination first.
    /// Settings come from the environment once, here: a destination without credentials stops the
    /// start; a default root without them is left to the clients, with a note.
    static func s3Repositories(destination: String?, defaultRoot: String, logger: Logger) throws -> [S3ArtifactRepository] {
        let destinationLocation: S3Location?
        let rootLocation: S3Location?
        do {
            destinationLocation = try destination.map { try S3Location(uri: $0) }
            rootLocation = defaultRoot.hasPrefix("s3://") ? try S3Location(uri: defaultRoot) : nil
        } catch let e as RepriseError {
            throw ValidationError(e.message)
        }
        guard destinationLocation != nil || rootLocation != nil else { return [] }
        let settings: S3Settings
        do {
            settings = try S3Settings.fromEnvironment()
        } catch let e as RepriseError {
            if destinationLocation != nil { throw ValidationError(e.message) }
            logger.notice(
                "Runs store artifacts at \(defaultRoot) and clients write there themselves; the server will not list or serve them: \(e.message)")
            return []
        }
        var out: [S3ArtifactRepository] = []
        if let destinationLocation { out.append(S3ArtifactRepository(location: destinationLocation, settings: settings)) }
        if let rootLocation, destinationLocation?.contains(rootLocation) != true {
            out.append(S3ArtifactRepository(location: rootLocation, settings: settings))
        }
        return out
    }

    func run() async throws {
        let started = ContinuousClock.now
        Self.tuneAllocator()
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "reprise")
        logger.logLevel = level
        // Metrics: chosen before anything records one (swift-metrics binds a metric to the backend
        // present when it is created).
        var metricsRegistry: PrometheusCollectorRegistry? = nil
        if exposePrometheus != nil {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            metricsRegistry = registry
        }

        let cwd = FileManager.default.currentDirectoryPath
        let dataDir = cwd + "/reprise-data"
        let postgres = try backendStoreURI.flatMap { PostgresLocation.isPostgres($0) ? try Self.postgresLocation($0) : nil }
        // With PostgreSQL, the files a server keeps for itself (its secret key, unless
        // REPRISE_SECRET_KEY gives it, and its audit checkpoints) live in ./reprise-data.
        let dbPath = try postgres != nil ? dataDir + "/postgres" : backendStoreURI.map { try Self.sqlitePath($0, cwd: cwd) } ?? dataDir + "/reprise.db"
        let s3Destination = artifactsDestination.flatMap { $0.hasPrefix("s3://") ? $0 : nil }
        let artifactsDir = s3Destination ?? Self.absolute(artifactsDestination ?? dataDir + "/artifacts", cwd: cwd)
        let artifactRoot = defaultArtifactRoot ?? (serveArtifacts ? "mlflow-artifacts:/" : artifactsDir)

        for (flag, value) in [("--gunicorn-opts", gunicornOpts), ("--uvicorn-opts", uvicornOpts), ("--waitress-opts", waitressOpts)]
        where value != nil {
            logger.notice("\(flag) is accepted for compatibility and ignored: Reprise serves HTTP itself.")
        }
        if let workers {
            logger.notice(
                "--workers \(workers) is accepted for compatibility and ignored: one Reprise process serves requests on all \(ProcessInfo.processInfo.activeProcessorCount) cores."
            )
        }
        if registryStoreURI != nil { logger.notice("--registry-store-uri is accepted; the registry shares the backend store.") }

        let opened = try await Self.openStore(
            backendStoreURI: backendStoreURI, postgres: postgres, dbPath: dbPath, artifactRoot: artifactRoot, cwd: cwd,
            poolSize: dbPoolSize, logger: logger)
        let (store, driver, keyMaterial, sealer) = (opened.store, opened.driver, opened.keyMaterial, opened.sealer)
        let localProxy: LocalArtifactRepository? = serveArtifacts && s3Destination == nil ? LocalArtifactRepository(root: artifactsDir) : nil

        // The local folders the server may open: where it stores proxied artifacts, and a local
        // default artifact root. Nothing a client names outside these is read or written.
        var localRoots: [String] = []
        if serveArtifacts && s3Destination == nil { localRoots.append(artifactsDir) }
        if !artifactRoot.contains(":") || artifactRoot.hasPrefix("file:") {
            localRoots.append(Self.absolute(artifactRoot, cwd: cwd))
        }
        let frame = (xFrameOptions ?? "SAMEORIGIN").uppercased()
        guard ["SAMEORIGIN", "DENY", "NONE"].contains(frame) else {
            throw ValidationError("--x-frame-options must be SAMEORIGIN, DENY or NONE, got '\(xFrameOptions ?? "")'.")
        }
        let config = ServerConfiguration(
            host: host, port: port, staticPrefix: ServerConfiguration.normalizePrefix(staticPrefix ?? ""),
            serveArtifacts: serveArtifacts, localArtifactRoots: localRoots,
            security: SecuritySettings(
                enabled: !disableSecurityMiddleware, allowedHosts: SecuritySettings.list(allowedHosts),
                corsAllowedOrigins: SecuritySettings.list(corsAllowedOrigins), xFrameOptions: frame),
            limits: ConnectionLimits(
                maxConnections: Int(Self.environmentInt("REPRISE_MAX_CONNECTIONS", 1024)),
                headerTimeoutSeconds: Self.environmentInt("REPRISE_HEADER_TIMEOUT_S", 30),
                idleTimeoutSeconds: Self.environmentInt("REPRISE_IDLE_TIMEOUT_S", 120),
                maxConcurrentLargeBodies: Int(Self.environmentInt("REPRISE_MAX_LARGE_BODIES", 8))),
            secretKey: keyMaterial)
        var configuration = config
        if let metricsRegistry {
            let memory = MemoryGauges(sqlite: postgres == nil)
            configuration.metricsExposition = {
                memory.sample()
                return metricsRegistry.emitToBuffer()
            }
        }
        if let sslCertfile, let sslKeyfile {
            configuration.tls = (Self.absolute(sslCertfile, cwd: cwd), Self.absolute(sslKeyfile, cwd: cwd))
        }
        var identities: SQLTrackingStore? = nil
        var authDriver: SQLiteDriver? = nil
        if appName == "basic-auth" || auth {
            let env = ProcessInfo.processInfo.environment
            var settings: AuthSettings
            do {
                settings = try AuthSettings.load(path: env["MLFLOW_AUTH_CONFIG_PATH"], environment: env)
            } catch let e as RepriseError {
                throw ValidationError(e.message)
            }
            if let oidcIssuer {
                var o = settings.oidc ?? OIDCSettings(issuer: oidcIssuer)
                o.issuer = oidcIssuer
                settings.oidc = o
            }
            if var o = settings.oidc {
                if let oidcJwksUri { o.jwksURI = oidcJwksUri }
                if let oidcAudience { o.audience = oidcAudience }
                if let oidcUsernameClaim { o.usernameClaim = oidcUsernameClaim }
                if let oidcGroupsClaim { o.groupsClaim = oidcGroupsClaim }
                settings.oidc = o
            }
            if settings.oidc != nil && settings.oidc?.audience == nil {
                throw ValidationError(
                    "Single sign-on needs the audience Reprise's tokens are issued for: give --oidc-audience (or oidc_audience in [reprise]), the client id registered at the issuer. Without it a token issued for any other application would be accepted.")
            }
            configuration.auth = settings
            // Users and grants live in the main store unless the auth config's database_uri says otherwise.
            if let uri = settings.databaseURI {
                let path = try Self.sqlitePath(uri, cwd: cwd)
                let d = try SQLiteDriver(path: path)
                let separate = SQLTrackingStore(
                    driver: d, artifacts: ArtifactRootPolicy(defaultRoot: artifactRoot, workingDirectory: cwd), secrets: sealer,
                    auditKey: AuditKey(keyMaterial: keyMaterial, checkpointFile: path + ".audit-head"))
                try await separate.migrate()
                identities = separate
                authDriver = d
            } else {
                identities = store
            }
        }
        // S3 repositories, chosen once here: the proxy's destination, and a default artifact root
        // in another place (clients write there themselves; the server lists and serves it). From
        // here on every exit shuts them (and the webhook deliverer's HTTP client) down.
        let s3Repositories = try Self.s3Repositories(
            destination: serveArtifacts ? s3Destination : nil, defaultRoot: artifactRoot, logger: logger)
        let deliverer = WebhookDeliverer(settings: .fromEnvironment(), logger: logger)
        let artifacts: (any ArtifactRepository)? = s3Destination != nil && serveArtifacts ? s3Repositories.first : localProxy
        let api = RepriseAPI(
            store: store, registry: store, governance: store, artifacts: artifacts, webhooks: store, deliverer: deliverer, repro: store, traces: store,
            config: configuration, logger: logger, identities: identities, s3Repositories: s3Repositories)
        do {
            try await api.bootstrapIdentity()
            try await api.prepareArtifactRoots()
        } catch {
            for repo in s3Repositories { try? await repo.shutdown() }
            await deliverer.shutdown()
            if let e = error as? RepriseError { throw ValidationError(e.message) }
            throw error
        }
        // Throws only for a TLS certificate or key it cannot load (checked for readability in validate()).
        let built = Result { try buildApplication(api: api, logger: logger) }
        if case .failure = built {
            for repo in s3Repositories { try? await repo.shutdown() }
            await deliverer.shutdown()
        }
        let app = try built.get()
        let dispatcher = WebhookDispatcher(store: store, deliverer: deliverer, logger: logger, recordsBacklog: metricsRegistry != nil)
        logger.info(
            "Reprise \(RepriseVersion.string) starting",
            metadata: [
                "address": "\(configuration.tls == nil ? "http" : "https")://\(host):\(port)\(config.staticPrefix)",
                "auth": "\(configuration.auth.enabled ? "on (default permission \(configuration.auth.defaultPermission.rawValue))" : "off")", "database": "\(dbPath)",
                "artifacts": "\(serveArtifacts ? artifactsDir : "not served")", "artifact_root": "\(artifactRoot)",
                "startup_ms": "\((ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000 + (ContinuousClock.now - started).components.seconds * 1000)",
            ])
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the checkpointer last, after the server has drained,
                // so its final checkpoint covers every event.
                services: [AuditCheckpointer(governance: store, logger: logger), app, dispatcher], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            for repo in s3Repositories { try? await repo.shutdown() }
            try? await driver.shutdown()
            if "\(error)".contains("Address already in use") {
                // Not a usage mistake: no usage block, just what to do.
                FileHandle.standardError.write(Data(
                    "error: \(host):\(port) is already in use. Stop the other server there, or start this one with --port PORT.\n".utf8))
                throw ExitCode.failure
            }
            throw error
        }
        for repo in s3Repositories { try? await repo.shutdown() }
        try await driver.shutdown()
        try await authDriver?.shutdown()
        logger.info("Reprise stopped; all acknowledged writes are committed.")
    }
}

/// Lets exactly one of several racers through.
final class OnceGate: @unchecked Sendable {
    private let lock = NSLock()
    private var opened = false
    func open() -> Bool {
        lock.withLock {
            if opened { return false }
            opened = true
            return true
        }
    }
}

/// Where the server's memory is, sampled at each `/metrics` scrape: resident pages, what SQLite holds
/// (page caches, statements), and what the allocator holds for live blocks and has kept after frees.
/// Resident memory that grows while `in_use` and SQLite's share stay level is the allocator keeping
/// freed memory, not a leak.
struct MemoryGauges: Sendable {
    let resident = Gauge(label: "process_resident_memory_bytes")
    /// Only with a SQLite store (a gauge, once created, is exported even when never recorded).
    let sqliteBytes: CoreMetrics.Gauge?
    let mallocInUse = Gauge(label: "reprise_malloc_in_use_bytes")
    let mallocFreeHeld = Gauge(label: "reprise_malloc_free_held_bytes")

    init(sqlite: Bool) {
        sqliteBytes = sqlite ? Gauge(label: "reprise_sqlite_memory_bytes") : nil
    }

    func sample() {
        // statm's second field: resident pages.
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        {
            resident.record(pages * Int(sysconf(Int32(_SC_PAGESIZE))))
        }
        sqliteBytes?.record(SQLiteDriver.memoryInUse)
        var inUse: UInt64 = 0, freeHeld: UInt64 = 0, mapped: UInt64 = 0
        if reprise_malloc_stats(&inUse, &freeHeld, &mapped) == 1 {
            mallocInUse.record(Int64(clamping: inUse))
            mallocFreeHeld.record(Int64(clamping: freeHeld))
        }
    }
}

extension ServerCommand {
    /// Large buffers go back to the system when freed. glibc serves allocations from 128 KiB up
    /// with `mmap` and returns them on `free`, but raises that threshold to the size of each such
    /// block freed (up to 32 MiB), after which an 8 MB get-history body comes from an arena and
    /// stays resident once freed: measured with bench/run.sh's suite, RSS after it was 195 MiB by
    /// default and 91 MiB with the threshold pinned at 1 MiB. `MALLOC_MMAP_THRESHOLD_` in the
    /// environment still wins.
    static func tuneAllocator() {
        if ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil {
            _ = reprise_pin_mmap_threshold(1 << 20)
        }
    }
}
