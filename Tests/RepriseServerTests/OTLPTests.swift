import Foundation
import RepriseCore
import SwiftProtobuf
import Testing

@testable import RepriseOTLP

@Suite("OTLP trace export")
struct OTLPTests {
    static func request(spanID: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8], attributes: [(String, String)] = []) -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest {
        var span = Opentelemetry_Proto_Trace_V1_Span()
        span.traceID = Data(Array(0..<16))
        span.spanID = Data(spanID)
        span.name = "root"
        span.startTimeUnixNano = 1_700_000_000_000_000_000
        span.endTimeUnixNano = 1_700_000_000_250_000_000
        span.status.code = .error
        span.attributes = attributes.map { k, v in
            var kv = Opentelemetry_Proto_Common_V1_KeyValue()
            kv.key = k
            kv.value.stringValue = v
            return kv
        }
        var child = span
        child.spanID = Data([9, 9, 9, 9, 9, 9, 9, 9])
        child.parentSpanID = Data(spanID)
        child.name = "child"
        child.status.code = .ok
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.spans = [span, child]
        var resource = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        resource.scopeSpans = [scope]
        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        request.resourceSpans = [resource]
        return request
    }

    @Test func protobufSpans() throws {
        let bytes: [UInt8] = try Self.request(attributes: [("mlflow.spanType", "\"CHAIN\"")]).serializedBytes()
        let spans = try OTLPTraces.decode(bytes, encoding: .protobuf)
        #expect(spans.count == 2)
        let root = spans[0]
        #expect(root.traceID == "tr-000102030405060708090a0b0c0d0e0f", "without mlflow.traceRequestId the id comes from the OTel trace id")
        #expect(root.spanID == "0102030405060708" && root.parentSpanID == nil && spans[1].parentSpanID == "0102030405060708")
        #expect(root.status == "ERROR" && spans[1].status == "OK" && root.spanType == "CHAIN", "older clients JSON-quote string attributes")
        #expect(root.startTimeNanos == 1_700_000_000_000_000_000 && root.endTimeNanos == 1_700_000_000_250_000_000)
        // The stored span is protobuf's JSON mapping with proto field names: what the client reads back.
        let content = try JSONValue.parse(root.content)
        #expect(content["trace_id"] == .string(Data(Array(0..<16)).base64EncodedString()) && content["name"] == "root")
        #expect(OTLPTraces.response(.protobuf).isEmpty && OTLPTraces.response(.json) == Array("{}".utf8))
    }

    @Test func mlflowTraceIDAttributeWins() throws {
        let bytes: [UInt8] = try Self.request(attributes: [("mlflow.traceRequestId", "tr-custom")]).serializedBytes()
        #expect(try OTLPTraces.decode(bytes, encoding: .protobuf).map(\.traceID) == ["tr-custom", "tr-custom"])
    }

    @Test func jsonWithHexIDs() throws {
        let body = #"""
            {"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"000102030405060708090a0b0c0d0e0f","spanId":"0102030405060708",
             "name":"j","startTimeUnixNano":"5","endTimeUnixNano":"9","status":{"code":"STATUS_CODE_OK"},"unknownField":1,
             "attributes":[{"key":"k","value":{"intValue":"3"}}]}]}]}]}
            """#
        let spans = try OTLPTraces.decode(Array(body.utf8), encoding: .json)
        #expect(spans.map(\.traceID) == ["tr-000102030405060708090a0b0c0d0e0f"] && spans[0].spanID == "0102030405060708")
        #expect(spans[0].status == "OK" && spans[0].endTimeNanos == 9)
    }

    @Test func refusals() throws {
        #expect(throws: RepriseError.self) { _ = try OTLPTraces.decode([], encoding: .protobuf) }
        #expect(throws: RepriseError.self) { _ = try OTLPTraces.decode([0xff, 0xff, 0xff], encoding: .protobuf) }
        #expect(throws: RepriseError.self) { _ = try OTLPTraces.decode(Array("{".utf8), encoding: .json) }
        #expect(throws: RepriseError.self) { _ = try OTLPTraces.decode(Array("{}".utf8), encoding: .json) }
        let short: [UInt8] = try Self.request(spanID: [1]).serializedBytes()
        #expect(throws: RepriseError.self) { _ = try OTLPTraces.decode(short, encoding: .protobuf) }
        // Attribute values nested past the depth limit are refused, not recursed into.
        var value = Opentelemetry_Proto_Common_V1_AnyValue()
        value.stringValue = "leaf"
        for _ in 0..<200 {
            var list = Opentelemetry_Proto_Common_V1_ArrayValue()
            list.values = [value]
            var outer = Opentelemetry_Proto_Common_V1_AnyValue()
            outer.arrayValue = list
            value = outer
        }
        var deep = Self.request()
        var kv = Opentelemetry_Proto_Common_V1_KeyValue()
        kv.key = "deep"
        kv.value = value
        deep.resourceSpans[0].scopeSpans[0].spans[0].attributes = [kv]
        let bytes: [UInt8] = try deep.serializedBytes()
        #expect(throws: RepriseError.self) { _ = try OTLPTraces.decode(bytes, encoding: .protobuf) }
        #expect(OTLPTraces.Encoding(contentType: "application/x-protobuf; charset=x") == .protobuf)
        #expect(OTLPTraces.Encoding(contentType: "text/plain") == nil && OTLPTraces.Encoding(contentType: nil) == nil)
    }
}
