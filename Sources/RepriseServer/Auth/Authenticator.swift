import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RepriseCore

/// Turns a request's credentials into a `Principal`: HTTP Basic (bcrypt-hashed passwords), access
/// tokens (`Bearer rpt_…`, stored as SHA-256 of the secret), OIDC bearer JWTs, and the UI's
/// session cookie.
///
/// A verified credential is cached for `AuthSettings.cacheSeconds` under the SHA-256 of what the
/// client sent, so bcrypt (deliberately slow) runs once per credential and period, not per request.
/// Every identity change made through this server clears the cache at once.
final class Authenticator: Sendable {
    let identities: any IdentityStore
    let settings: AuthSettings
    let logger: Logger
    let oidc: OIDCVerifier?
    private let sessionKey: SymmetricKey
    /// Keyed by the SHA-256 of what the client sent, so no password or token is kept in memory.
    private let cache = NIOLockedValueBox<[SHA256Digest: (principal: Principal, expires: UInt64)]>([:])
    /// Credentials refused recently: the same wrong password sent again is refused without
    /// another bcrypt run, so repeating one request cannot burn the server's CPU.
    private let refused = NIOLockedValueBox<[SHA256Digest: UInt64]>([:])
    /// bcrypt runs at most this many at once (about half the cores); the rest wait their turn, so
    /// a flood of distinct wrong passwords slows logins down but cannot starve the requests of
    /// callers already verified (they hit the cache).
    private let slowChecks = AsyncLimiter(permits: max(1, ProcessInfo.processInfo.activeProcessorCount / 2))

    static let unauthenticatedMessage =
        "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate."
    static let sessionCookie = "reprise_session"
    static let busyMessage = "Too many password checks are waiting (many logins at once, or someone guessing passwords); retry in a few seconds, or use an access token (checked without bcrypt)."
    static let tokenPrefix = "rpt_"

    init(identities: any IdentityStore, settings: AuthSettings, secret: [UInt8], logger: Logger, http: HTTPClient = .shared) {
        self.identities = identities
        self.settings = settings
        self.logger = logger
        self.oidc = settings.oidc.map { OIDCVerifier(settings: $0, http: http, logger: logger) }
        self.decoyHash = Bcrypt.hash(RandomID.uuid(), cost: settings.bcryptCost)
        sessionKey = SymmetricKey(
            data: Array(HMAC<SHA256>.authenticationCode(for: Array("reprise/ui-session/v1".utf8), using: SymmetricKey(data: secret))))
    }

    /// Forgets every cached credential (after a password, admin, group, token or user change).
    func invalidate() {
        cache.withLockedValue { $0.removeAll(keepingCapacity: true) }
        refused.withLockedValue { $0.removeAll(keepingCapacity: true) }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// The caller, nil when the request carries no credentials, or throws 401 for bad ones.
    func authenticate(_ request: Request) async throws -> Principal? {
        if let header = request.headers[.authorization], !header.isEmpty {
            return try await cached(header) { try await self.verify(authorization: header) }
        }
        if let cookie = RepriseAPI.cookies(request)[Self.sessionCookie], !cookie.isEmpty {
            return try await cached("cookie:" + cookie) { try await self.verify(session: cookie) }
        }
        return nil
    }

    /// A verified principal and, for credentials that expire (tokens, JWTs, sessions), when.
    typealias Verified = (principal: Principal, expiresMS: Int64?)

    private func cached(_ credential: String, _ verify: () async throws -> Verified) async throws -> Principal {
        let key = SHA256.hash(data: Array(credential.utf8))
        let now = Self.now()
        if let hit = cache.withLockedValue({ $0[key] }), hit.expires > now { return hit.principal }
        if let until = refused.withLockedValue({ $0[key] }), until > now { throw Self.unauthenticated() }
        let principal: Principal
        let expiresMS: Int64?
        do {
            (principal, expiresMS) = try await verify()
        } catch let e as RepriseError where e.code.rawValue == "UNAUTHENTICATED" {
            refused.withLockedValue { r in
                if r.count > 10_000 { r.removeAll(keepingCapacity: true) }
                r[key] = now + 5_000_000_000
            }
            throw e
        }
        var ttl = UInt64(max(0, settings.cacheSeconds)) * 1_000_000_000
        // A credential's own expiry ends the cache entry too.
        if let expiresMS {
            let left = expiresMS - Int64(Date().timeIntervalSince1970 * 1000)
            ttl = min(ttl, UInt64(max(0, left)) * 1_000_000)
        }
        cache.withLockedValue { c in
            if c.count > 10_000 { c.removeAll(keepingCapacity: true) }  // bounded; refills on demand
            c[key] = (principal, now + ttl)
        }
        return principal
    }

    static func unauthenticated() -> RepriseError { RepriseError(.init(rawValue: "UNAUTHENTICATED"), unauthenticatedMessage) }

    private func verify(authorization header: String) async throws -> Verified {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { throw Self.unauthenticated() }
        let scheme = parts[0].lowercased()
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "basic":
            guard let data = Data(base64Encoded: value), let decoded = String(data: data, encoding: .utf8),
                let colon = decoded.firstIndex(of: ":")
            else { throw Self.unauthenticated() }
            return (try await verify(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...])), nil)
        case "bearer":
            if value.hasPrefix(Self.tokenPrefix) { return try await verify(token: value) }
            if let oidc {
                let identity = try await oidc.verify(value)
                return (try await principal(oidc: identity), identity.expiresMS)
            }
            throw Self.unauthenticated()
        default:
            throw Self.unauthenticated()
        }
    }

    /// Checks a user name and password; used by Basic and by the UI's login form.
    func verify(username: String, password: String) async throws -> Principal {
        guard let user = try await identities.user(named: username), !user.isService, !user.passwordHash.isEmpty else {
            // Spend about the time a real check would, so timing does not tell which names exist.
            _ = try await bcryptVerify(password, hash: decoyHash)
            throw Self.unauthenticated()
        }
        guard try await bcryptVerify(password, hash: user.passwordHash) else { throw Self.unauthenticated() }
        return try await principal(user, method: .basic)
    }

    /// A bcrypt hash of nothing anyone knows, at the configured cost.
    private let decoyHash: String

    /// One bcrypt check, waiting for a slot among `slowChecks`, run off the request threads.
    func bcryptVerify(_ password: String, hash: String) async throws -> Bool {
        try await slowChecks.acquire(timeout: .seconds(10), busy: Self.busyMessage)
        let ok = await Self.offload { Bcrypt.verify(password, hash: hash) }
        await slowChecks.release()
        return ok
    }

    /// Runs slow CPU work (bcrypt) off the cooperative pool's request path.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in DispatchQueue.global().async { c.resume(returning: work()) } }
    }

    func hashPassword(_ password: String) async -> String {
        let cost = settings.bcryptCost
        return await Self.offload { Bcrypt.hash(password, cost: cost) }
    }

    private func verify(token: String) async throws -> Verified {
        let body = token.dropFirst(Self.tokenPrefix.count)
        guard let sep = body.firstIndex(of: "_") else { throw Self.unauthenticated() }
        let id = "tok_" + body[..<sep]
        let secret = String(body[body.index(after: sep)...])
        guard let (record, storedHash) = try await identities.token(id: id) else { throw Self.unauthenticated() }
        guard ConstantTime.equals(Array(Hex.encode(SHA256.hash(data: Array(secret.utf8))).utf8), Array(storedHash.utf8)) else {
            throw Self.unauthenticated()
        }
        let nowMS = Int64(Date().timeIntervalSince1970 * 1000)
        if record.revoked { throw Self.unauthenticated() }
        if let expires = record.expiresTime, expires <= nowMS { throw Self.unauthenticated() }
        guard let user = try await identities.user(id: record.userID) else { throw Self.unauthenticated() }
        try? await identities.touchToken(id: id, time: nowMS)
        var p = try await principal(user, method: .token)
        p.tokenID = id
        return (p, record.expiresTime)
    }

    /// A new token secret for `tokenID` (`rpt_<id>_<secret>`) and the hash the store keeps.
    static func newTokenSecret() -> (body: String, hash: String) {
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Hex.encode($0) }
        return (secret, Hex.encode(SHA256.hash(data: Array(secret.utf8))))
    }

    static func tokenString(id: String, secret: String) -> String {
        tokenPrefix + id.dropFirst("tok_".count) + "_" + secret
    }

    func principal(_ user: UserAccount, method: AuthMethod, extraGroups: [String] = []) async throws -> Principal {
        let roles = try await identities.roles(ofUser: user.id)
        var groups = roles.map(\.name)
        var roleIDs = roles.map(\.id)
        for g in extraGroups where !groups.contains(g) {
            groups.append(g)
            if let r = try await identities.role(named: g) { roleIDs.append(r.id) }
        }
        return Principal(
            userID: user.id, username: user.username, isAdmin: user.isAdmin, isService: user.isService, canActAs: user.canActAs,
            method: method, groups: groups, roleIDs: roleIDs)
    }

    private func principal(oidc identity: OIDCIdentity) async throws -> Principal {
        let user = try await identities.provisionExternalUser(username: identity.username, subject: identity.subject)
        return try await principal(user, method: .oidc, extraGroups: identity.groups)
    }

    // MARK: - UI sessions

    /// A session cookie value: `<user id>.<generation>.<expiry seconds>.<mac>`. A password or admin
    /// change bumps the user's generation, which ends every session of theirs.
    func issueSession(for user: UserAccount) -> String {
        let expires = Int64(Date().timeIntervalSince1970) + Int64(settings.sessionSeconds)
        let body = "\(user.id).\(user.generation).\(expires)"
        return body + "." + sessionMAC(body)
    }

    private func sessionMAC(_ body: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: sessionKey))
    }

    private func verify(session: String) async throws -> Verified {
        let parts = session.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, let userID = Int64(parts[0]), let generation = Int64(parts[1]), let expires = Int64(parts[2]) else {
            throw Self.unauthenticated()
        }
        let body = parts[0...2].joined(separator: ".")
        guard ConstantTime.equals(Array(sessionMAC(body).utf8), Array(parts[3].utf8)) else { throw Self.unauthenticated() }
        guard expires > Int64(Date().timeIntervalSince1970), let user = try await identities.user(id: userID), user.generation == generation
        else { throw Self.unauthenticated() }
        return (try await principal(user, method: .session), expires * 1000)
    }

    // MARK: - Start-up

    /// Creates the admin from the configuration when it does not exist yet.
    func bootstrap() async throws {
        if try await identities.user(named: settings.adminUsername) != nil { return }
        guard let password = settings.adminPassword, !password.isEmpty else {
            throw RepriseError.invalid(
                "Authentication is on but the admin user '\(settings.adminUsername)' does not exist and no password is configured for it. Set admin_password in the file MLFLOW_AUTH_CONFIG_PATH names, or MLFLOW_AUTH_ADMIN_PASSWORD, for the first start.")
        }
        do {
            try AuthSettings.validatePassword(password)
            if password == AuthSettings.insecureDefaultPassword {
                throw RepriseError.invalid("Refusing to use the insecure default password '\(password)'.")
            }
        } catch let e as RepriseError {
            throw RepriseError.invalid(
                "The configured password for the admin user '\(settings.adminUsername)' is invalid: \(e.message) Set admin_password (MLFLOW_AUTH_CONFIG_PATH) or MLFLOW_AUTH_ADMIN_PASSWORD to at least \(AuthSettings.minimumPasswordLength) characters.")
        }
        let hash = await hashPassword(password)
        _ = try await WriteContext.$current.withValue(WriteContext(actor: "system", authenticated: false, requestID: "bootstrap")) {
            try await identities.createUser(username: settings.adminUsername, passwordHash: hash, isAdmin: true, isService: false, canActAs: false)
        }
        logger.info("created the admin user", metadata: ["username": "\(settings.adminUsername)"])
    }
}

/// Who an OIDC token names.
struct OIDCIdentity: Sendable {
    var username: String
    /// `<issuer>|<sub>`: who the issuer says this is, stable across renames.
    var subject: String
    var groups: [String]
    /// The token's `exp`, in milliseconds since 1970.
    var expiresMS: Int64
}

/// The registered claims every OIDC token is checked for; the configurable ones (user name,
/// groups) are read from the verified payload afterwards.
struct OIDCClaims: JWTPayload {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var aud: AudienceClaim?

    func verify(using _: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }
}

/// Verifies bearer JWTs against the issuer's published keys (JWKS), fetched on first use and again
/// when a token names a key id not seen yet (key rotation), at most once a minute.
actor OIDCVerifier {
    let settings: OIDCSettings
    let http: HTTPClient
    let logger: Logger
    private var keys: JWTKeyCollection?
    private var fetchedAt: ContinuousClock.Instant?

    init(settings: OIDCSettings, http: HTTPClient, logger: Logger) {
        self.settings = settings
        self.http = http
        self.logger = logger
    }

    func verify(_ token: String) async throws -> OIDCIdentity {
        let collection = try await keyCollection(refresh: false)
        let claims: OIDCClaims
        do {
            claims = try await collection.verify(token, as: OIDCClaims.self)
        } catch {
            // Perhaps the issuer rotated its keys: fetch them again (rate-limited) and retry once.
            guard let fresh = try? await keyCollection(refresh: true), fresh !== collection,
                let retried = try? await fresh.verify(token, as: OIDCClaims.self)
            else { throw Authenticator.unauthenticated() }
            claims = retried
        }
        guard claims.iss.value == settings.issuer else { throw Authenticator.unauthenticated() }
        if let audience = settings.audience {
            guard let aud = claims.aud, aud.value.contains(audience) else { throw Authenticator.unauthenticated() }
        }
        // The payload is verified; read the configured claims from it.
        let segments = token.split(separator: ".")
        guard segments.count == 3, let payload = Self.base64URLDecode(segments[1]), case .object(let o)? = try? JSONValue.parse(payload)
        else { throw Authenticator.unauthenticated() }
        let username = o[settings.usernameClaim]?.stringValue ?? claims.sub.value
        guard !username.isEmpty else { throw Authenticator.unauthenticated() }
        var groups: [String] = []
        switch o[settings.groupsClaim] {
        case .array(let items)?: groups = items.compactMap(\.stringValue)
        case .string(let s)?: groups = [s]
        default: break
        }
        return OIDCIdentity(
            username: username, subject: settings.issuer + "|" + claims.sub.value, groups: groups, expiresMS: Int64(claims.exp.value.timeIntervalSince1970 * 1000))
    }

    private var inflight: Task<JWTKeyCollection, Error>?
    private var failedAt: ContinuousClock.Instant?

    /// The issuer's keys: fetched once, shared by concurrent callers while a fetch is under way,
    /// fetched again (at most once a minute) for a key not seen yet, and not fetched at all for
    /// 10 s after a failed fetch, so bad tokens cannot make the server hammer the issuer.
    private func keyCollection(refresh: Bool) async throws -> JWTKeyCollection {
        if let keys, !refresh { return keys }
        if refresh, let fetchedAt, ContinuousClock.now - fetchedAt < .seconds(60), let keys { return keys }
        if let failedAt, ContinuousClock.now - failedAt < .seconds(10) {
            if let keys { return keys }
            throw Authenticator.unauthenticated()
        }
        if let inflight { return try await inflight.value }
        let task = Task { () async throws -> JWTKeyCollection in
            let jwksURI = try await self.resolveJWKSURI()
            let text = try await self.fetch(jwksURI)
            let collection = JWTKeyCollection()
            try await collection.add(jwksJSON: text)
            return collection
        }
        inflight = task
        defer { inflight = nil }
        do {
            let collection = try await task.value
            keys = collection
            fetchedAt = .now
            failedAt = nil
            return collection
        } catch {
            failedAt = .now
            logger.warning("OIDC keys could not be fetched", metadata: ["issuer": "\(settings.issuer)", "error": "\(error)"])
            if let keys { return keys }
            throw Authenticator.unauthenticated()
        }
    }

    private func resolveJWKSURI() async throws -> String {
        if let uri = settings.jwksURI { return uri }
        let base = settings.issuer.hasSuffix("/") ? String(settings.issuer.dropLast()) : settings.issuer
        let discovery = try JSONValue.parse(try await fetch(base + "/.well-known/openid-configuration"))
        guard let uri = discovery["jwks_uri"]?.stringValue else {
            throw RepriseError.invalid("The OIDC issuer's discovery document has no jwks_uri.")
        }
        return uri
    }

    private func fetch(_ url: String) async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            logger.warning("OIDC key fetch failed", metadata: ["url": "\(url)", "status": "\(response.status.code)"])
            throw Authenticator.unauthenticated()
        }
        return String(buffer: body)
    }

    static func base64URLDecode(_ s: Substring) -> [UInt8]? {
        var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        return Data(base64Encoded: b).map(Array.init)
    }
}
