import CompressNIO
import Foundation
import NIOCore
import RepriseCore
import SwiftProtobuf

typealias ExportRequest = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest
typealias ExportResponse = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse
typealias OTelSpan = Opentelemetry_Proto_Trace_V1_Span

/// OTLP/HTTP trace export (`POST /v1/traces`): the request read into spans, and the reply.
public enum OTLPTraces {
    public enum Encoding: Sendable {
        case protobuf, json

        /// From the request's `Content-Type`; nil for any other type.
        public init?(contentType: String?) {
            let type = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            switch type {
            case "application/x-protobuf", "application/protobuf": self = .protobuf
            case "application/json": self = .json
            default: return nil
            }
        }

        public var contentType: String { self == .protobuf ? "application/x-protobuf" : "application/json" }
    }

    /// Nesting bound for attribute values (maps in lists in maps…): decoding stops there.
    static let depthLimit = 64

    /// The spans of an export request, each with the MLflow trace id it belongs to.
    /// The export's body as sent, undone from its `Content-Encoding` (none, `gzip` or `deflate`:
    /// OTel exporters compress by default). The decompressed size is bounded by `limit`.
    public static func body(_ raw: ByteBuffer, contentEncoding: String?, limit: Int) throws -> [UInt8] {
        let coding = (contentEncoding ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        // HTTP's `deflate` is the zlib format; some clients send raw deflate, tried second.
        let algorithms: [CompressionAlgorithm]
        switch coding {
        case "", "identity": return Array(raw.readableBytesView)
        case "gzip", "x-gzip": algorithms = [.gzip()]
        case "deflate": algorithms = [.zlib(), .deflate()]
        default:
            throw RepriseError.invalid("Content-Encoding '\(coding)' is not supported for OTLP exports here; send gzip, deflate or no encoding.")
        }
        for algorithm in algorithms {
            var compressed = raw
            do {
                let out = try compressed.decompress(with: algorithm, maxSize: limit)
                return Array(out.readableBytesView)
            } catch let e as CompressNIOError where e == .bufferOverflow {
                throw RepriseError.invalid(
                    "The \(coding) body of this OTLP export decompresses to more than \(limit) bytes, the most one request may carry; export fewer spans per request.")
            } catch {
                continue
            }
        }
        throw RepriseError.invalid("The \(coding) body of this OTLP export could not be decompressed: it is not valid \(coding) data.")
    }

    public static func decode(_ bytes: [UInt8], encoding: Encoding) throws -> [SpanRecord] {
        let request: ExportRequest
        do {
            switch encoding {
            case .protobuf:
                var options = BinaryDecodingOptions()
                options.messageDepthLimit = depthLimit
                request = try ExportRequest(serializedBytes: bytes, options: options)
            case .json:
                var options = JSONDecodingOptions()
                options.messageDepthLimit = depthLimit
                options.ignoreUnknownFields = true
                request = try ExportRequest(jsonUTF8Bytes: try hexIDsToBase64(bytes), options: options)
            }
        } catch let e as RepriseError {
            throw e
        } catch {
            throw RepriseError.invalid("Invalid OpenTelemetry format - the request is not an OTLP trace export (\(error)).")
        }
        var out: [SpanRecord] = []
        var printer = JSONEncodingOptions()
        printer.preserveProtoFieldNames = true
        for resource in request.resourceSpans {
            for scope in resource.scopeSpans {
                for span in scope.spans {
                    out.append(try record(span, printer: printer))
                }
            }
        }
        if out.isEmpty { throw RepriseError.invalid("Invalid OpenTelemetry format - no spans found") }
        return out
    }

    /// The reply to a successful export, in the request's encoding.
    public static func response(_ encoding: Encoding) -> [UInt8] {
        switch encoding {
        case .protobuf: return (try? ExportResponse().serializedBytes()) ?? []
        case .json: return Array("{}".utf8)
        }
    }

    static func record(_ span: OTelSpan, printer: JSONEncodingOptions) throws -> SpanRecord {
        guard span.traceID.count == 16 else {
            throw RepriseError.invalid("Invalid OpenTelemetry format - a span's trace_id has \(span.traceID.count) bytes, not 16.")
        }
        guard span.spanID.count == 8 else {
            throw RepriseError.invalid("Invalid OpenTelemetry format - a span's span_id has \(span.spanID.count) bytes, not 8.")
        }
        guard span.parentSpanID.isEmpty || span.parentSpanID.count == 8 else {
            throw RepriseError.invalid("Invalid OpenTelemetry format - a span's parent_span_id has \(span.parentSpanID.count) bytes, not 8.")
        }
        var requestID: String? = nil
        var spanType: String? = nil
        for kv in span.attributes {
            guard case .stringValue(let s)? = kv.value.value else { continue }
            if kv.key == TraceKeys.requestID { requestID = unquoted(s) }
            if kv.key == TraceKeys.spanType { spanType = unquoted(s) }
        }
        let traceID = requestID.flatMap { $0.isEmpty ? nil : $0 } ?? "tr-" + Hex.encode(Array(span.traceID))
        let status: String
        switch span.status.code {
        case .ok: status = "OK"
        case .error: status = "ERROR"
        default: status = "UNSET"
        }
        let content: String
        do {
            content = try span.jsonString(options: printer)
        } catch {
            throw RepriseError.invalid("Invalid OpenTelemetry format - a span cannot be stored (\(error)).")
        }
        return SpanRecord(
            traceID: traceID, spanID: Hex.encode(Array(span.spanID)),
            parentSpanID: span.parentSpanID.isEmpty ? nil : Hex.encode(Array(span.parentSpanID)), name: span.name, spanType: spanType,
            status: status, startTimeNanos: Int64(clamping: span.startTimeUnixNano),
            endTimeNanos: span.endTimeUnixNano == 0 ? nil : Int64(clamping: span.endTimeUnixNano), content: content,
            searchText: searchText(span))
    }

    /// The span's words for full-text search: name, attribute keys and values, event names and
    /// attributes, status message; one per line, values plain (a string attribute holding JSON
    /// is searched as that JSON's text).
    static func searchText(_ span: OTelSpan) -> String {
        var lines = [span.name]
        func plain(_ v: Opentelemetry_Proto_Common_V1_AnyValue, depth: Int = 0) -> String {
            guard depth < depthLimit else { return "" }
            switch v.value {
            case .stringValue(let s)?: return s
            case .boolValue(let b)?: return b ? "true" : "false"
            case .intValue(let i)?: return String(i)
            case .doubleValue(let d)?: return String(d)
            case .arrayValue(let a)?: return a.values.map { plain($0, depth: depth + 1) }.joined(separator: " ")
            case .kvlistValue(let l)?: return l.values.map { "\($0.key): \(plain($0.value, depth: depth + 1))" }.joined(separator: " ")
            case .bytesValue(let b)?: return b.base64EncodedString()
            default: return ""
            }
        }
        for kv in span.attributes { lines.append("\(kv.key): \(plain(kv.value))") }
        for event in span.events {
            lines.append(event.name)
            for kv in event.attributes { lines.append("\(kv.key): \(plain(kv.value))") }
        }
        if !span.status.message.isEmpty { lines.append(span.status.message) }
        return lines.joined(separator: "\n")
    }

    /// Older MLflow clients JSON-encode string attributes (`"\"CHAIN\""`); newer ones send them plain.
    static func unquoted(_ s: String) -> String {
        guard s.count >= 2, s.hasPrefix("\""), s.hasSuffix("\""), case .string(let inner)? = try? JSONValue.parse(s) else { return s }
        return inner
    }

    static let idFields: Set<String> = ["traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"]

    /// OTLP/JSON spells trace and span ids in hex, where protobuf's JSON mapping expects base64:
    /// rewrites every id field holding 16 or 32 hex digits.
    static func hexIDsToBase64(_ bytes: [UInt8]) throws -> [UInt8] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw RepriseError.invalid("Invalid OpenTelemetry format - the body is not JSON: \(error)")
        }
        func walk(_ v: JSONValue, depth: Int) throws -> JSONValue {
            guard depth < depthLimit * 2 else { throw RepriseError.invalid("Invalid OpenTelemetry format - nested too deeply.") }
            switch v {
            case .array(let items): return .array(try items.map { try walk($0, depth: depth + 1) })
            case .object(let o):
                var out = JSONObject()
                for (k, member) in o.members {
                    if idFields.contains(k), case .string(let s) = member, s.count == 16 || s.count == 32, let raw = Hex.decode(s) {
                        out.members.append((k, .string(Data(raw).base64EncodedString())))
                    } else {
                        out.members.append((k, try walk(member, depth: depth + 1)))
                    }
                }
                return .object(out)
            default: return v
            }
        }
        return try walk(value, depth: 0).serialized()
    }
}
