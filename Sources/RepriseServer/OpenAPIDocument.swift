/// The OpenAPI 3.1 description of Reprise's own endpoints (served at `/api/reprise/v1/openapi.json`).
/// The MLflow-compatible endpoints are described by MLflow's REST API documentation.
enum OpenAPIDocument {
    static let json = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "Reprise extension API",
        "version": "1",
        "description": "Beside the MLflow protocol: protected aliases, approvals, rollback, the audit trail, webhook delivery logs, experiment policies, reproduction verdicts and lineage. The caller is named by the X-Reprise-Actor header (or HTTP Basic user name) and is recorded as unauthenticated until authentication lands. Errors use MLflow's envelope {error_code, message}."
      },
      "paths": {
        "/api/reprise/v1/alias-policies": {
          "get": {"summary": "List alias policies", "parameters": [{"name": "model", "in": "query", "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{policies: [AliasPolicy]}"}}},
          "put": {"summary": "Protect an alias of a model ('*' for every model)",
                  "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/AliasPolicy"}}}},
                  "responses": {"200": {"description": "{policy}"}, "400": {"description": "invalid policy"}}},
          "delete": {"summary": "Remove a policy", "requestBody": {"content": {"application/json": {"schema": {
                       "type": "object", "required": ["model", "alias"], "properties": {"model": {"type": "string"}, "alias": {"type": "string"}}}}}},
                     "responses": {"200": {"description": "{}"}, "404": {"description": "no such policy"}}}
        },
        "/api/reprise/v1/approval-requests": {
          "post": {"summary": "Ask to move an alias; moves it at once when the alias is not protected",
                   "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["model", "alias", "version", "rationale"],
                     "properties": {"model": {"type": "string"}, "alias": {"type": "string"}, "version": {"type": "string"}, "rationale": {"type": "string"}}}}}},
                   "responses": {"202": {"description": "{approval_request}"}, "200": {"description": "{moved: true, ...} (unprotected alias)"}}},
          "get": {"summary": "List requests", "parameters": [{"name": "model", "in": "query", "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "schema": {"enum": ["open", "approved", "rejected", "cancelled"]}}],
                  "responses": {"200": {"description": "{approval_requests: [ApprovalRequest]}"}}}
        },
        "/api/reprise/v1/approval-requests/{id}": {
          "get": {"summary": "One request with its votes", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{approval_request}"}, "404": {"description": "unknown request"}}}
        },
        "/api/reprise/v1/approval-requests/{id}/approve": {
          "post": {"summary": "Approve (not your own request); the alias moves when the rule is met and the checks pass",
                   "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                   "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rationale"}}}},
                   "responses": {"200": {"description": "{approval_request}"}, "403": {"description": "self-approval or not an approver"}, "400": {"description": "not open, already voted, or checks failed"}}}
        },
        "/api/reprise/v1/approval-requests/{id}/reject": {
          "post": {"summary": "Reject; nothing moves", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                   "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rationale"}}}},
                   "responses": {"200": {"description": "{approval_request}"}}}
        },
        "/api/reprise/v1/approval-requests/{id}/cancel": {
          "post": {"summary": "Cancel (requester or approver)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                   "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rationale"}}}},
                   "responses": {"200": {"description": "{approval_request}"}}}
        },
        "/api/reprise/v1/experiments/{id}/policy": {
          "get": {"summary": "The experiment's policy: required passport fields and mode", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{policy}"}, "404": {"description": "no policy"}}},
          "put": {"summary": "Set it. strict refuses runs missing a field at creation and at finish (FINISHED only); soft tags them reprise.compliant=false",
                  "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                  "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                    "mode": {"enum": ["strict", "soft"]},
                    "required": {"type": "array", "items": {"enum": ["code", "data", "environment", "seed", "owner", "purpose", "command", "baseline"]}},
                    "refuse_dirty": {"type": "boolean"}, "refuse_duplicates": {"type": "boolean"}}}}}},
                  "responses": {"200": {"description": "{policy}"}, "400": {"description": "unknown field or mode"}}},
          "delete": {"summary": "Remove it", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                     "responses": {"200": {"description": "{}"}, "404": {"description": "no policy"}}}
        },
        "/api/reprise/v1/reproductions": {
          "post": {"summary": "Record a reproduction verdict; tags both runs (reprise.reproduction.*), even a sealed original",
                   "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["original_run_id", "verdict"], "properties": {
                     "original_run_id": {"type": "string"}, "rerun_run_id": {"type": "string"}, "verdict": {"enum": ["REPRODUCED", "DIVERGED", "INCOMPLETE"]},
                     "summary": {"type": "string"}, "details": {"type": "object"}}}}}},
                   "responses": {"200": {"description": "{reproduction}"}, "404": {"description": "unknown run"}}},
          "get": {"summary": "Reproductions of (or by) a run, newest first", "parameters": [{"name": "run_id", "in": "query", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{reproductions: [Reproduction]}"}}}
        },
        "/api/reprise/v1/lineage": {
          "get": {"summary": "Lineage graph from an entity, upstream and downstream: dataset -> run -> logged_model -> model_version -> alias; parent/child runs and reproductions one hop away",
                  "parameters": [{"name": "entity", "in": "query", "required": true, "schema": {"type": "string"}, "description": "run:ID, dataset:DIGEST, logged_model:ID, model_version:NAME/N, alias:NAME@ALIAS or registered_model:NAME"},
                    {"name": "depth", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 20}}],
                  "responses": {"200": {"description": "{lineage: {root, nodes: [{type, id, label}], edges: [{from, to, relation}]}}"}, "404": {"description": "unknown entity"}}}
        },
        "/api/reprise/v1/webhooks/{id}/deliveries": {
          "get": {"summary": "A webhook's deliveries, newest first: state (PENDING, DELIVERED, FAILED), attempts, last response status or error, payload. Finished deliveries are kept 7 days.",
                  "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "max_results", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                  "responses": {"200": {"description": "{deliveries: [Delivery]}"}, "404": {"description": "unknown webhook"}}}
        },
        "/api/reprise/v1/aliases/rollback": {
          "post": {"summary": "Move an alias back to its previous version (through a request when the policy says so)",
                   "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["model", "alias", "rationale"],
                     "properties": {"model": {"type": "string"}, "alias": {"type": "string"}, "rationale": {"type": "string"}}}}}},
                   "responses": {"202": {"description": "{approval_request}"}, "200": {"description": "{moved: true, version}"}}}
        },
        "/api/reprise/v1/aliases/history": {
          "get": {"summary": "Versions an alias pointed at, newest first",
                  "parameters": [{"name": "model", "in": "query", "required": true, "schema": {"type": "string"}},
                                 {"name": "alias", "in": "query", "required": true, "schema": {"type": "string"}}],
                  "responses": {"200": {"description": "{history: [{version, time, actor, approval_request}]}"}}}
        },
        "/api/reprise/v1/audit/events": {
          "get": {"summary": "Audit events in sequence order",
                  "parameters": [{"name": "entity_type", "in": "query", "schema": {"type": "string"}},
                                 {"name": "entity_id", "in": "query", "schema": {"type": "string"}, "description": "a model name also matches its versions (name/N) and aliases (name@alias)"},
                                 {"name": "after_seq", "in": "query", "schema": {"type": "integer"}},
                                 {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100000}}],
                  "responses": {"200": {"description": "{events: [AuditEvent], next_after_seq?}"}}}
        },
        "/api/reprise/v1/audit/verify": {
          "get": {"summary": "Walk the hash chain", "responses": {"200": {"description": "{ok, checked, first_bad_seq?, problem?, head_seq?, head_hash?}"}}}
        }
      },
      "components": {
        "schemas": {
          "Rationale": {"type": "object", "required": ["rationale"], "properties": {"rationale": {"type": "string"}}},
          "AliasPolicy": {"type": "object", "required": ["model", "alias"], "properties": {
            "model": {"type": "string", "description": "a registered model name, or * for every model"},
            "alias": {"type": "string"},
            "required_approvals": {"type": "integer", "minimum": 1, "default": 1},
            "approvers": {"type": "array", "items": {"type": "string"}, "description": "empty: anyone but the requester"},
            "checks": {"type": "array", "items": {"type": "object", "properties": {
              "type": {"enum": ["run_complete", "reproduced", "metric_not_worse"]},
              "metric": {"type": "string"}, "margin": {"type": "number"}, "higher_is_better": {"type": "boolean"}}}},
            "rollback_requires_approval": {"type": "boolean", "default": true}}},
          "AuditEvent": {"type": "object", "properties": {
            "seq": {"type": "integer"}, "time": {"type": "integer"}, "actor": {"type": "string"}, "authenticated": {"type": "boolean"},
            "action": {"type": "string"}, "entity_type": {"type": "string"}, "entity_id": {"type": "string"}, "summary": {},
            "request_id": {"type": "string"}, "prev_hash": {"type": "string"}, "hash": {"type": "string", "description": "SHA-256 of the JSON array [seq, time, actor, authenticated, action, entity_type, entity_id, summary, request_id, prev_hash]"}}}
        }
      }
    }
    """#
}
