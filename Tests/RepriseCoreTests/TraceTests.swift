import Foundation
import Testing

@testable import RepriseCore

@Suite("Traces")
struct TraceTests {
    @Test func timestampsRoundTrip() throws {
        #expect(TraceTime.format(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(TraceTime.format(millis: 1_796_222_944_635) == "2026-12-02T14:49:04.635Z")
        #expect(TraceTime.format(millis: -1) == "1969-12-31T23:59:59.999Z")
        for ms: Int64 in [0, 1, 999, 1_796_222_944_635, 951_782_400_000, 4_102_444_799_999, -86_400_001] {
            #expect(try TraceTime.parse(TraceTime.format(millis: ms)) == ms)
        }
        #expect(try TraceTime.parse("2026-12-02T14:49:04Z") == 1_796_222_944_000)
        #expect(try TraceTime.parse("2026-12-02T14:49:04.6Z") == 1_796_222_944_600)
        #expect(try TraceTime.parse("2026-12-02T14:49:04.635123456Z") == 1_796_222_944_635)
        #expect(try TraceTime.parse("2026-12-02T16:49:04.635+02:00") == 1_796_222_944_635)
        #expect(try TraceTime.parse("2026-12-02T10:19:04.635-04:30") == 1_796_222_944_635)
        for bad in ["", "2026-12-02", "2026-12-02T14:49:04", "2026-13-02T14:49:04Z", "2026-12-02T14:49:04.Z", "2026-12-02T14:49:04Zjunk",
                    "2026-12-02T14:49:04+0200", "abcd-12-02T14:49:04Z", "2026-12-02T24:00:00Z"] {
            #expect(throws: RepriseError.self, "\(bad)") { _ = try TraceTime.parse(bad) }
        }
    }

    @Test func durations() throws {
        #expect(TraceTime.formatDuration(millis: 21) == "0.021s")
        #expect(TraceTime.formatDuration(millis: 3000) == "3s")
        #expect(TraceTime.formatDuration(millis: 1500) == "1.500s")
        #expect(try TraceTime.parseDuration("0.021s") == 21)
        #expect(try TraceTime.parseDuration("3s") == 3000)
        #expect(try TraceTime.parseDuration("0.000021s") == 0)
        for bad in ["", "s", "1", "1ms", "nans", "infs", "1e300s"] {
            #expect(throws: RepriseError.self, "\(bad)") { _ = try TraceTime.parseDuration(bad) }
        }
    }

    @Test func traceInfoWire() throws {
        let o: JSONObject = [
            "trace_id": "tr-1", "trace_location": ["type": "MLFLOW_EXPERIMENT", "mlflow_experiment": ["experiment_id": "9"]],
            "request_time": "2026-11-25T17:58:14.071Z", "execution_duration": "0.021s", "state": "OK",
            "trace_metadata": ["mlflow.user": "ana"], "tags": ["mlflow.traceName": "f"], "request_preview": "{}",
        ]
        let info = try TraceInfo(wire: o)
        #expect(info.experimentID == "9" && info.executionDuration == 21 && info.state == .ok && info.metadata("mlflow.user") == "ana")
        let back = info.json
        #expect(back["request_time"] == "2026-11-25T17:58:14.071Z" && back["execution_duration"] == "0.021s")
        #expect(back["trace_location"]?["mlflow_experiment"]?["experiment_id"] == "9" && back["tags"]?["mlflow.traceName"] == "f")
        var wrong = o
        wrong["tags"] = ["n": 1]
        #expect(throws: RepriseError.self) { _ = try TraceInfo(wire: wrong) }
        for id in ["", "a/b", "..", "x y", String(repeating: "a", count: 257)] {
            var bad = o
            bad["trace_id"] = .string(id)
            #expect(throws: RepriseError.self, "\(id)") { _ = try TraceInfo(wire: bad) }
        }
        var uc = o
        uc["trace_location"] = ["type": "UC_SCHEMA"]
        #expect(throws: RepriseError.self) { _ = try TraceInfo(wire: uc) }
    }

    @Test func searchGrammar() throws {
        func clauses(_ f: String) throws -> [TraceSearchQuery.Clause] {
            try TraceSearchQuery(experimentIDs: ["1"], filter: f, orderBy: [], maxResults: nil, pageToken: nil).clauses
        }
        #expect(try clauses("tag.a = 'b'") == [.tag(key: "a", .eq, .string("b"))])
        #expect(try clauses("tags.`x.y` != 'b'") == [.tag(key: "x.y", .ne, .string("b"))])
        #expect(try clauses("request_metadata.k LIKE 'v%'") == [.metadata(key: "k", .like, .string("v%"))])
        #expect(try clauses("trace.timestamp_ms > 5") == [.attribute(column: "request_time", .gt, .number(5, text: "5"))])
        #expect(try clauses("attributes.status = 'OK'") == [.attribute(column: "state", .eq, .string("OK"))])
        #expect(try clauses("name = 'f'") == [.tag(key: "mlflow.traceName", .eq, .string("f"))])
        #expect(try clauses("span.type = 'LLM'") == [.span(field: "type", .eq, .string("LLM"))])
        #expect(try clauses("feedback.good = 'true'") == [.assessment(kind: "feedback", name: "good", .eq, .string("true"))])
        #expect(try clauses("run_id = 'r'") == [.run(.eq, .string("r"))])
        for bad in ["trace.color = 'red'", "span.nope = 'x'", "timestamp_ms > 'x'", "tag.a > 'b'", "tag.a = b", "run_id != 'r'", "text > 'x'", "bogus.k = 'v'"] {
            #expect(throws: RepriseError.self, "\(bad)") { _ = try clauses(bad) }
        }
        let q = try TraceSearchQuery(experimentIDs: ["1"], filter: nil, orderBy: ["timestamp_ms ASC", "name DESC"], maxResults: 5, pageToken: nil)
        #expect(q.orderBy.map(\.column) == ["request_time", "name"] && q.orderBy.map(\.ascending) == [true, false])
        #expect(throws: RepriseError.self) { _ = try TraceSearchQuery(experimentIDs: ["1"], filter: nil, orderBy: ["bogus"], maxResults: nil, pageToken: nil) }
        for bad in [0, 50_001] {
            #expect(throws: RepriseError.self) { _ = try TraceSearchQuery(experimentIDs: ["1"], filter: nil, orderBy: [], maxResults: bad, pageToken: nil) }
        }
    }

    @Test func assessmentUpdates() throws {
        let a = try Assessment.fromWire(
            ["assessment_name": "good", "feedback": ["value": true], "rationale": "r", "source": ["source_type": "CODE"], "valid": false],
            traceID: "tr-1", id: "a-1", now: 5)
        #expect(a.valid && a.kind == "feedback" && a.createTime == 5 && a.body["valid"] == nil, "valid is the server's")
        #expect(a.json["assessment_id"] == "a-1" && a.json["rationale"] == "r" && a.json["valid"] == true)
        let b = try a.updated(with: ["feedback": ["value": false], "rationale": "x"], mask: "feedback", now: 9)
        #expect(b.body["feedback"]?["value"] == false && b.body["rationale"] == "r" && b.lastUpdateTime == 9)
        #expect(throws: RepriseError.self) { _ = try a.updated(with: ["expectation": ["value": 1]], mask: "expectation", now: 9) }
        #expect(throws: RepriseError.self) { _ = try a.updated(with: ["trace_id": "tr-2"], mask: "traceId", now: 9) }
        #expect(throws: RepriseError.self) { _ = try Assessment.fromWire(["assessment_name": "x"], traceID: "t", id: "a", now: 1) }
        #expect(throws: RepriseError.self) {
            _ = try Assessment.fromWire(["assessment_name": "x", "feedback": ["value": 1], "trace_id": "other"], traceID: "t", id: "a", now: 1)
        }
    }

    @Test func hex() {
        #expect(Hex.decode("00ff7Fa0") == [0, 255, 127, 160])
        #expect(Hex.decode("abc") == nil && Hex.decode("zz") == nil && Hex.decode("") == [])
        #expect(Hex.encode(Hex.decode("0123456789abcdef")!) == "0123456789abcdef")
    }
}
