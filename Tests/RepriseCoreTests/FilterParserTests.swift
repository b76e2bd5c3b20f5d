import RepriseCore
import Testing

@Suite("Search grammar")
struct FilterParserTests {
    @Test func parsesComparisonsJoinedByAnd() throws {
        let c = try FilterParser.parse("metrics.loss < 1 and params.alpha = '0.5' AND tags.`my tag` LIKE 'a%'")
        #expect(c.count == 3)
        #expect(c[0] == RawClause(entity: "metrics", key: "loss", comparator: .lt, value: .number(1, text: "1"), quoted: false))
        #expect(c[1].entity == "params" && c[1].key == "alpha" && c[1].value == .string("0.5") && c[1].quoted)
        #expect(c[2].entity == "tags" && c[2].key == "my tag" && c[2].comparator == .like)
    }

    @Test func parsesEveryComparator() throws {
        let cases: [(String, Comparator)] = [
            ("metrics.a = 1", .eq), ("metrics.a != 1", .ne), ("metrics.a <> 1", .ne), ("metrics.a > 1", .gt),
            ("metrics.a >= 1", .ge), ("metrics.a < 1", .lt), ("metrics.a <= 1", .le), ("tags.a LIKE 'x'", .like),
            ("tags.a ilike 'x'", .ilike), ("run_id IN ('a')", .in), ("run_id NOT IN ('a', 'b')", .notIn),
            ("tags.a IS NULL", .isNull), ("tags.a is not null", .isNotNull),
        ]
        for (text, comparator) in cases {
            #expect(try FilterParser.parse(text).first?.comparator == comparator, "\(text)")
        }
    }

    @Test func splitsOnFirstDotAndHandlesQuotedKeys() throws {
        #expect(try FilterParser.parse("tags.mlflow.runName = 'x'")[0].key == "mlflow.runName")
        #expect(try FilterParser.parse("tag.`mlflow.prompt.is_prompt` != 'true'")[0].key == "mlflow.prompt.is_prompt")
        #expect(try FilterParser.parse("metrics.\"my metric\" > 0")[0].key == "my metric")
        #expect(try FilterParser.parse("`Run name` = 'x'")[0].entity == nil)
        #expect(try FilterParser.parse("name = 'it''s'")[0].value == .string("it's"))
        #expect(try FilterParser.parse("run_id IN ('a','b' , 'c')")[0].value == .list(["a", "b", "c"]))
        #expect(try FilterParser.parse("metrics.x > -1.5e3")[0].value == .number(-1500, text: "-1.5e3"))
        #expect(try FilterParser.parse("   ").isEmpty)
        #expect(try FilterParser.parse(nil).isEmpty)
    }

    @Test func rejectsBadFilters() {
        for bad in [
            "metrics.a > 1 OR metrics.b < 2", "metrics.a", "metrics.a >", "params.a = 'unterminated",
            "metrics.a > 1 and", "metrics.a > 1 metrics.b < 2", "run_id IN ()", "run_id IN (1, 2)", "= 'x'",
        ] {
            #expect(throws: RepriseError.self, "\(bad)") { try FilterParser.parse(bad) }
        }
        #expect((try? FilterParser.parse("metrics.a > 1 OR metrics.b < 2")) == nil)
        do {
            _ = try FilterParser.parse("a = 'x' OR b = 'y'")
        } catch let e as RepriseError {
            #expect(e.message == "Invalid clause(s) in filter string: 'OR'")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func runSearchRules() throws {
        func check(_ filter: String) throws -> [FilterClause] {
            try RunSearchQuery(experimentIDs: ["1"], filter: filter, orderBy: [], viewType: .activeOnly, maxResults: 10, pageToken: nil).filter
        }
        #expect(try check("attributes.`Run name` = 'a'")[0].key == "run_name")
        #expect(try check("created > 5")[0].key == "start_time")
        #expect(try check("datasets.digest IN ('a')")[0].entity == .dataset)
        #expect(try check("parameters.p = 'a'")[0].entity == .param)
        let bad: [(String, String)] = [
            ("foo.x = 'a'", "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"),
            ("metrics.m = 'a'", "Expected numeric value type for metric. Found 'a'"),
            ("metrics.m LIKE 1", "Invalid comparator 'LIKE' not one of '['>', '>=', '!=', '=', '<', '<=']'"),
            ("attributes.nope = 'a'", "Invalid attribute key 'nope'"),
            ("params.p = a", "Parameter value is either not quoted or unidentified quote types used for string value a."),
            ("status IN ('a')", "Invalid comparator 'IN'"),
        ]
        for (filter, message) in bad {
            do {
                _ = try check(filter)
                Issue.record("accepted \(filter)")
            } catch let e as RepriseError {
                #expect(e.message.hasPrefix(message), "\(filter): \(e.message)")
            }
        }
    }

    @Test func orderByAndLimits() throws {
        let q = try RunSearchQuery(
            experimentIDs: ["1"], filter: nil, orderBy: ["metrics.loss DESC", "params.`a b`", "start_time asc"],
            viewType: .activeOnly, maxResults: nil, pageToken: nil)
        #expect(q.orderBy == [
            OrderTerm(entity: .metric, key: "loss", ascending: false), OrderTerm(entity: .param, key: "a b", ascending: true),
            OrderTerm(entity: .attribute, key: "start_time", ascending: true),
        ])
        #expect(q.maxResults == 1000)
        #expect(throws: RepriseError.self) {
            try RunSearchQuery(experimentIDs: [], filter: nil, orderBy: ["metrics.a", "metrics.a DESC"], viewType: .all, maxResults: 1, pageToken: nil)
        }
        #expect(throws: RepriseError.self) {
            try RunSearchQuery(experimentIDs: [], filter: nil, orderBy: [], viewType: .all, maxResults: 50001, pageToken: nil)
        }
        #expect(throws: RepriseError.self) {
            try RunSearchQuery(experimentIDs: ["abc"], filter: nil, orderBy: [], viewType: .all, maxResults: 1, pageToken: nil)
        }
        #expect(throws: RepriseError.self) {
            try ExperimentSearchQuery(filter: nil, orderBy: [], viewType: .all, maxResults: 0, pageToken: nil)
        }
        #expect(throws: RepriseError.self) {
            try ExperimentSearchQuery(filter: "attributes.name = 'a'", orderBy: [], viewType: .all, maxResults: 5, pageToken: nil)
        }
    }

    @Test func pageTokens() throws {
        #expect(PageToken.encode(offset: 1) == "eyJvZmZzZXQiOiAxfQ==")
        #expect(try PageToken.decode("eyJvZmZzZXQiOiAxfQ==") == 1)
        #expect(try PageToken.decode(nil) == 0)
        #expect(throws: RepriseError.self) { try PageToken.decode("not base64!!") }
        #expect(throws: RepriseError.self) { try PageToken.decode("e30=") }  // {}
    }
}
