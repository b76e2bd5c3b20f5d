import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// AWS Signature Version 4, written here from AWS's published description of the algorithm.
//
// No S3 SDK for Swift is in this project's package mirror (neither Soto nor aws-sdk-swift), and
// the S3 repository needs only a handful of calls, so signing is done by hand on top of
// swift-crypto's SHA-256 and HMAC. `SigV4Tests` checks it against the published SigV4 test-suite
// vectors and the S3 documentation's examples.
//
// Nothing in this file logs, and no description of a credential shows the secret.

/// The keys requests are signed with: an access key id, its secret, and, for temporary
/// credentials, a session token (`AWS_SESSION_TOKEN`).
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    /// - Parameters:
    ///   - accessKeyID: the access key id (`AWS_ACCESS_KEY_ID`).
    ///   - secretAccessKey: its secret (`AWS_SECRET_ACCESS_KEY`); never printed.
    ///   - sessionToken: the session token of temporary credentials (`AWS_SESSION_TOKEN`).
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// Names the access key id only: the secret and the token never appear in logs or errors.
    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <hidden>\(sessionToken == nil ? "" : ", sessionToken: <hidden>"))"
    }
    public var debugDescription: String { description }
}

/// How a request body enters the signature.
public enum SigV4Payload: Sendable, Equatable {
    /// The lowercase hex SHA-256 of the body.
    case sha256(String)
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature (a stream whose bytes are not
    /// known when the request is signed).
    case unsigned

    /// The hash of `bytes`.
    public static func of<D: DataProtocol>(_ bytes: D) -> SigV4Payload { .sha256(SigV4.hex(SHA256.hash(data: bytes))) }

    /// The hash of an empty body.
    public static let empty = SigV4Payload.sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    /// The value that goes in the canonical request and in `x-amz-content-sha256`.
    public var value: String {
        switch self {
        case .sha256(let h): return h
        case .unsigned: return "UNSIGNED-PAYLOAD"
        }
    }
}

/// A request as it goes on the wire, in the parts SigV4 signs.
public struct SigV4Request: Sendable {
    /// `GET`, `PUT`, …
    public var method: String
    /// The path exactly as sent, each segment already URI-encoded (`SigV4.encodePath`). It is
    /// signed as it is: S3 neither normalises paths nor encodes them a second time.
    public var encodedPath: String
    /// The query parameters, not encoded; the signer encodes and sorts them.
    public var query: [(String, String)]
    /// The headers to sign, including `host`.
    public var headers: [(String, String)]
    /// The body's hash, or `.unsigned`.
    public var payload: SigV4Payload

    /// - Parameters:
    ///   - method: the HTTP method.
    ///   - encodedPath: the URI-encoded path, starting with `/`.
    ///   - query: decoded query parameters.
    ///   - headers: the headers to sign (at least `host`).
    ///   - payload: the body's hash.
    public init(method: String, encodedPath: String, query: [(String, String)] = [], headers: [(String, String)], payload: SigV4Payload = .empty) {
        self.method = method
        self.encodedPath = encodedPath
        self.query = query
        self.headers = headers
        self.payload = payload
    }
}

/// Signs requests with AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for one region and service.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    /// - Parameters:
    ///   - credentials: the keys to sign with.
    ///   - region: the region, such as `us-east-1`.
    ///   - service: the service name in the credential scope (`s3`).
    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The canonical request: method, path, sorted encoded query, canonical headers, signed
    /// header names and the payload hash, one per line.
    public func canonicalRequest(_ request: SigV4Request) -> String {
        let (canonicalHeaders, signed) = SigV4.canonicalHeaders(request.headers)
        return [
            request.method.uppercased(),
            request.encodedPath.isEmpty ? "/" : request.encodedPath,
            SigV4.canonicalQuery(request.query),
            canonicalHeaders,
            signed,
            request.payload.value,
        ].joined(separator: "\n")
    }

    /// `<yyyyMMdd>/<region>/<service>/aws4_request`.
    public func scope(date: Date) -> String {
        "\(SigV4.dateStamp(date).prefix(8))/\(region)/\(service)/aws4_request"
    }

    /// The string to sign: the algorithm, the time, the credential scope and the SHA-256 of the
    /// canonical request.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        [
            Self.algorithm, SigV4.dateStamp(date), scope(date: date),
            SigV4.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
    }

    /// The signature: HMAC-SHA256 of the string to sign under the key derived from the secret,
    /// the day, the region and the service.
    public func signature(stringToSign: String, date: Date) -> String {
        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [String(SigV4.dateStamp(date).prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return SigV4.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    /// The `Authorization` header value for `request` exactly as given (add `x-amz-date` and the
    /// other headers first, or use `sign`).
    public func authorization(_ request: SigV4Request, date: Date) -> String {
        let sts = stringToSign(canonicalRequest: canonicalRequest(request), date: date)
        let (_, signed) = SigV4.canonicalHeaders(request.headers)
        return "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(date: date)), SignedHeaders=\(signed), Signature=\(signature(stringToSign: sts, date: date))"
    }

    /// Adds what a signed request carries — `x-amz-date`, `x-amz-security-token` when there is a
    /// session token, `x-amz-content-sha256` when `contentHashHeader` (S3 requires it) — and
    /// `Authorization`, and returns the headers to send.
    public func sign(_ request: SigV4Request, date: Date, contentHashHeader: Bool) -> [(String, String)] {
        var r = request
        func has(_ name: String) -> Bool { r.headers.contains { $0.0.lowercased() == name } }
        if !has("x-amz-date") { r.headers.append(("x-amz-date", SigV4.dateStamp(date))) }
        if let token = credentials.sessionToken, !has("x-amz-security-token") { r.headers.append(("x-amz-security-token", token)) }
        if contentHashHeader, !has("x-amz-content-sha256") { r.headers.append(("x-amz-content-sha256", r.payload.value)) }
        return r.headers + [("authorization", authorization(r, date: date))]
    }
}

extension SigV4Signer {
    /// The longest a presigned URL may live: SigV4 refuses `X-Amz-Expires` above seven days.
    public static let maxPresignSeconds = 7 * 24 * 3600

    /// Presigns `request` with query-string authentication: the query to send (sorted and encoded,
    /// as `SigV4.canonicalQuery` writes it), with `X-Amz-Algorithm`, `X-Amz-Credential`,
    /// `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token` for temporary
    /// credentials, and last `X-Amz-Signature`.
    ///
    /// Whoever holds the URL may make this one request (method, path, query and signed headers as
    /// given) until it expires; the body is not covered (`UNSIGNED-PAYLOAD`), as for every S3
    /// presigned upload. The secret is not in the URL, only the access key id and the signature.
    /// - Parameters:
    ///   - request: the request; its headers are the ones the holder must send (at least `host`).
    ///     Its payload is ignored: presigned requests are signed with `UNSIGNED-PAYLOAD`.
    ///   - date: when the URL becomes valid.
    ///   - expires: seconds it stays valid, clamped to 1 ... seven days.
    public func presignedQuery(_ request: SigV4Request, date: Date, expires: Int) -> String {
        var r = request
        r.payload = .unsigned
        let (_, signed) = SigV4.canonicalHeaders(r.headers)
        r.query += [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(date: date))"),
            ("X-Amz-Date", SigV4.dateStamp(date)),
            ("X-Amz-Expires", String(min(max(expires, 1), Self.maxPresignSeconds))),
            ("X-Amz-SignedHeaders", signed),
        ]
        if let token = credentials.sessionToken { r.query.append(("X-Amz-Security-Token", token)) }
        let sts = stringToSign(canonicalRequest: canonicalRequest(r), date: date)
        r.query.append(("X-Amz-Signature", signature(stringToSign: sts, date: date)))
        return SigV4.canonicalQuery(r.query)
    }
}

/// The encoding and formatting rules SigV4 is built from.
public enum SigV4 {
    /// RFC 3986 percent-encoding as SigV4 wants it: the unreserved characters (`A-Z a-z 0-9 - . _ ~`)
    /// stay, every other byte of the UTF-8 becomes `%XX` with upper-case hex; `/` stays only when
    /// `keepSlash`.
    public static func uriEncode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            if isUnreserved(b) || (keepSlash && b == 0x2F) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out.append("%")
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0F)])
            }
        }
        return out
    }

    /// RFC 3986's unreserved set: `A-Z a-z 0-9 - . _ ~`.
    static func isUnreserved(_ b: UInt8) -> Bool {
        if b >= 0x41 && b <= 0x5A { return true }  // A-Z
        if b >= 0x61 && b <= 0x7A { return true }  // a-z
        if b >= 0x30 && b <= 0x39 { return true }  // 0-9
        return b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E  // - . _ ~
    }

    /// `/` followed by each segment encoded on its own (so a segment's own bytes are encoded and
    /// the separators are not).
    public static func encodePath(_ segments: [String]) -> String {
        "/" + segments.map { uriEncode($0) }.joined(separator: "/")
    }

    /// Encoded `key=value` pairs sorted by key, then value, joined with `&` (also what goes on the
    /// wire, so the signed and the sent query are the same bytes).
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        // Encoded strings are ASCII, so String order is byte order here.
        let encoded: [(key: String, value: String)] = query.map { pair in (uriEncode(pair.0), uriEncode(pair.1)) }
        let sorted = encoded.sorted { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        return sorted.map { pair in pair.key + "=" + pair.value }.joined(separator: "&")
    }

    /// The canonical header block (each `name:value` line ends with a newline) and the signed
    /// header list. Names are lower-cased and sorted; values trimmed, runs of spaces collapsed to
    /// one, and repeated headers joined with commas.
    public static func canonicalHeaders(_ headers: [(String, String)]) -> (block: String, signed: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            merged[name.lowercased(), default: []].append(normalizeHeaderValue(value))
        }
        let names = merged.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let block = names.map { "\($0):\(merged[$0, default: []].joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    /// Trims surrounding white space and collapses each run of spaces to one.
    static func normalizeHeaderValue(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for c in value.trimmingCharacters(in: .whitespaces) {
            if c == " " {
                if lastWasSpace { continue }
                lastWasSpace = true
            } else {
                lastWasSpace = false
            }
            out.append(c)
        }
        return out
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC (the `x-amz-date` format).
    public static func dateStamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    static let hexDigits: [Character] = Array("0123456789ABCDEF")

    /// Lowercase hex of a digest or MAC.
    public static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef")
        var out = ""
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return out
    }
}
