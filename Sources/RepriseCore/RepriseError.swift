/// An error with an MLflow error code. Every failure a client can cause is one of these, so the
/// server can always answer with the MLflow envelope and the right HTTP status.
public struct RepriseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// MLflow's error codes. The raw value is the name that goes on the wire.
    public struct Code: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        public static let invalidParameterValue = Code(rawValue: "INVALID_PARAMETER_VALUE")
        public static let resourceAlreadyExists = Code(rawValue: "RESOURCE_ALREADY_EXISTS")
        public static let resourceDoesNotExist = Code(rawValue: "RESOURCE_DOES_NOT_EXIST")
        public static let badRequest = Code(rawValue: "BAD_REQUEST")
        public static let endpointNotFound = Code(rawValue: "ENDPOINT_NOT_FOUND")
        public static let invalidState = Code(rawValue: "INVALID_STATE")
        public static let internalError = Code(rawValue: "INTERNAL_ERROR")
        public static let notImplemented = Code(rawValue: "NOT_IMPLEMENTED")
        public static let temporarilyUnavailable = Code(rawValue: "TEMPORARILY_UNAVAILABLE")
        public static let permissionDenied = Code(rawValue: "PERMISSION_DENIED")
        public static let resourceExhausted = Code(rawValue: "RESOURCE_EXHAUSTED")
        public static let aborted = Code(rawValue: "ABORTED")

        /// The HTTP status MLflow pairs with this code (spec §1.4), with one deliberate difference:
        /// `INVALID_STATE` (an operation the entity's state does not allow, such as renaming a
        /// deleted experiment) is the caller's doing, so it is a 400 here where the reference sends
        /// 500, which also made the stock client retry it with back-off. No request gets a 5xx for
        /// its own mistake.
        public var httpStatus: Int {
            switch rawValue {
            case "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST", "INVALID_STATE": return 400
            case "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED": return 401
            case "PERMISSION_DENIED": return 403
            case "RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND": return 404
            case "ABORTED", "RESOURCE_CONFLICT", "ALREADY_EXISTS": return 409
            case "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED": return 429
            case "CANCELLED": return 499
            case "NOT_IMPLEMENTED": return 501
            case "TEMPORARILY_UNAVAILABLE": return 503
            case "DEADLINE_EXCEEDED": return 504
            default: return 500
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The MLflow error envelope.
    public var envelope: JSONValue {
        .object(JSONObject([("error_code", .string(code.rawValue)), ("message", .string(message))]))
    }

    // Frequent constructors, with the reference server's wording.
    public static func invalid(_ message: String) -> RepriseError { .init(.invalidParameterValue, message) }
    public static func notFound(_ message: String) -> RepriseError { .init(.resourceDoesNotExist, message) }
    public static func exists(_ message: String) -> RepriseError { .init(.resourceAlreadyExists, message) }

    public static func missing(_ field: String) -> RepriseError {
        .invalid(
            "Missing value for required parameter '\(field)'. See the API docs for more information about request parameters."
        )
    }

    public static func wrongType(_ field: String, _ value: JSONValue, _ detail: String) -> RepriseError {
        .invalid(
            "Invalid value \(value.pythonDumps) for parameter '\(field)' supplied: \(detail) Hint: Value was of type '\(value.pythonTypeName)'. See the API docs for more information about request parameters."
        )
    }
}

/// This build's version.
public enum RepriseVersion {
    public static let string = "0.1.0"
}
