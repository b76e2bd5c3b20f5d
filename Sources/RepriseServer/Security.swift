import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RepriseCore

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
    static let vary = Self("Vary")!
    static let accessControlAllowOrigin = Self("Access-Control-Allow-Origin")!
    static let accessControlAllowMethods = Self("Access-Control-Allow-Methods")!
    static let accessControlAllowHeaders = Self("Access-Control-Allow-Headers")!
    static let accessControlRequestHeaders = Self("Access-Control-Request-Headers")!
    static let accessControlMaxAge = Self("Access-Control-Max-Age")!
}

/// The browser-facing defences of `mlflow server`'s security middleware, decided in one place:
/// which Host headers are served (DNS rebinding), which origins get CORS headers, and which
/// state-changing requests are refused as cross-site.
struct SecurityPolicy: Sendable {
    let settings: SecuritySettings

    /// Whether `host` (a Host header value, perhaps with a port) may be served.
    func allowsHost(_ hostHeader: String?) -> Bool {
        guard settings.enabled, let hostHeader, !hostHeader.isEmpty else { return true }
        // The common case, without allocating: a loopback address, with or without a port.
        if hostHeader.utf8.starts(with: "127.0.0.1".utf8) || hostHeader.utf8.starts(with: "localhost".utf8) {
            let rest = hostHeader.utf8.dropFirst(9)
            if rest.isEmpty || rest.first == UInt8(ascii: ":") { return true }
        }
        let host = hostHeader.lowercased()
        let name = Self.stripPort(host)
        // Loopback names are always served: a rebinding attack arrives with the attacker's name.
        if name == "localhost" || name == "::1" || Self.ipv4(name)?.first == 127 { return true }
        if settings.allowedHosts.isEmpty { return Self.isLocalOrPrivate(name) }
        for pattern in settings.allowedHosts.map({ $0.lowercased() }) {
            if pattern == "*" || pattern == host || pattern == name { return true }
            if pattern.hasPrefix("*.") && name.hasSuffix(String(pattern.dropFirst(1))) { return true }
        }
        return false
    }

    /// The host part of `host[:port]` or `[v6]:port`.
    static func stripPort(_ host: String) -> String {
        if host.hasPrefix("[") { return host.firstIndex(of: "]").map { String(host[host.index(after: host.startIndex)..<$0]) } ?? host }
        if host.filter({ $0 == ":" }).count == 1, let i = host.lastIndex(of: ":") { return String(host[..<i]) }
        return host
    }

    /// localhost, loopback and private-range addresses: what MLflow serves by default.
    static func isLocalOrPrivate(_ name: String) -> Bool {
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" { return true }
        if let v4 = ipv4(name) {
            let a = v4[0], b = v4[1]
            return a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168) || (a == 169 && b == 254)
                || v4 == [0, 0, 0, 0]
        }
        // IPv6 literals only (a name such as `fd.attacker.example` is not an address): ULA and link-local.
        guard name.contains(":"), name.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
        return name.hasPrefix("fc") || name.hasPrefix("fd") || name.hasPrefix("fe80:")
    }

    /// The four octets of a dotted IPv4 literal, or nil for anything else (a name like `127.evil.example`).
    static func ipv4(_ name: String) -> [Int]? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [Int] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let v = Int(p), (0...255).contains(v) else { return nil }
            out.append(v)
        }
        return out
    }

    /// Whether a browser origin (`scheme://host[:port]`) may call the API cross-origin.
    func allowsOrigin(_ origin: String) -> Bool {
        let o = origin.lowercased()
        if settings.corsAllowedOrigins.isEmpty {
            guard let schemeEnd = o.range(of: "://") else { return false }
            let scheme = o[..<schemeEnd.lowerBound]
            guard scheme == "http" || scheme == "https" else { return false }
            let name = Self.stripPort(String(o[schemeEnd.upperBound...]))
            return name == "localhost" || name == "127.0.0.1" || name == "::1"
        }
        return settings.corsAllowedOrigins.contains { $0 == "*" || $0.lowercased() == o }
    }

    /// Whether `origin` names the server itself, as reached through `host`.
    static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, let schemeEnd = origin.range(of: "://") else { return false }
        return origin[schemeEnd.upperBound...].lowercased() == host.lowercased()
    }

    /// A refusal for requests a browser was tricked into sending, or nil.
    func refusal(_ request: Request) -> RepriseError? {
        guard settings.enabled else { return nil }
        let host = request.head.authority
        if !allowsHost(host) {
            return RepriseError(
                .permissionDenied,
                "Host '\(host ?? "")' is not allowed. Start the server with --allowed-hosts naming it (DNS-rebinding protection).")
        }
        switch request.method {
        case .get, .head, .options: return nil
        default: break
        }
        if request.headers[.secFetchSite]?.lowercased() == "cross-site" {
            return RepriseError(.permissionDenied, "Cross-site requests may not change data (Sec-Fetch-Site: cross-site).")
        }
        if let origin = request.headers[.origin] {
            if origin == "null" || (!Self.isSameOrigin(origin, host: host) && !allowsOrigin(origin)) {
                return RepriseError(
                    .permissionDenied,
                    "Origin '\(origin)' may not change data on this server. Add it with --cors-allowed-origins if it is yours.")
            }
        }
        return nil
    }

    /// The response to a CORS preflight (`OPTIONS` with `Origin`), given the methods the path has.
    func preflight(_ request: Request, methods: [HTTPRequest.Method]) -> Response {
        var headers: HTTPFields = [.allow: Self.allowList(methods)]
        if settings.enabled, let origin = request.headers[.origin], allowsOrigin(origin) {
            headers[.accessControlAllowOrigin] = origin
            headers[.vary] = "Origin"
            headers[.accessControlAllowMethods] = Self.allowList(methods)
            headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders] ?? "Content-Type, Authorization"
            headers[.accessControlMaxAge] = "600"
        }
        return Response(status: .noContent, headers: headers)
    }

    /// `GET, HEAD, POST`… for an `Allow` header.
    static func allowList(_ methods: [HTTPRequest.Method]) -> String {
        var names = Set(methods.map(\.rawValue))
        if names.contains("GET") { names.insert("HEAD") }
        names.insert("OPTIONS")
        let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return order.filter(names.contains).joined(separator: ", ")
    }

    /// Headers every response carries.
    func decorate(_ response: inout Response, request: Request) {
        response.headers[.xContentTypeOptions] = "nosniff"
        guard settings.enabled else { return }
        if settings.xFrameOptions != "NONE" { response.headers[.xFrameOptions] = settings.xFrameOptions }
        if let origin = request.headers[.origin], allowsOrigin(origin) {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.vary] = "Origin"
        }
    }
}

/// The UI's anti-forgery tokens, bound to this server: a random nonce and an HMAC of it under a key
/// derived from the server secret. The cookie and the form field must match *and* the token must be
/// one this server issued, so a cookie planted by a sibling site (cookie tossing) does not pass.
struct CSRFTokens: Sendable {
    private let key: SymmetricKey

    init(secret: [UInt8]) {
        key = SymmetricKey(
            data: Array(HMAC<SHA256>.authenticationCode(for: Array("reprise/ui-csrf/v1".utf8), using: SymmetricKey(data: secret))))
    }

    private func mac(_ nonce: Substring) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(nonce.utf8), using: key).prefix(16))
    }

    /// A fresh token: `nonce.mac`, 65 characters of [0-9a-f.].
    func issue() -> String {
        let nonce = SymmetricKey(size: .init(bitCount: 128)).withUnsafeBytes { Hex.encode($0) }
        return nonce + "." + mac(Substring(nonce))
    }

    /// Whether this server issued `token`.
    func isValid(_ token: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 32, parts[1].utf8.count == 32 else { return false }
        // Constant-time comparison of the MACs.
        return ConstantTime.equals(Array(mac(parts[0]).utf8), Array(parts[1].utf8))
    }
}
