import Foundation
import Testing

@testable import RepriseArtifacts

/// The expected values are published data: the AWS Signature Version 4 test suite (as shipped in
/// botocore's tests/unit/auth/aws4_testsuite, "Copyright 2019 Amazon.com", Apache-2.0) and the
/// examples of the S3 documentation ("Signature Calculations for the Authorization Header").
@Suite("SigV4 signing")
struct SigV4Tests {
    /// 2015-08-30T12:36:00Z, the test suite's clock.
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)
    /// 2013-05-24T00:00:00Z, the S3 documentation's clock.
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)
    static let suiteSigner = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    static let s3Signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "s3")
    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let suiteHeaders = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var request: SigV4Request
        var creq: String
        var stsHash: String
        var authz: String
        var testDescription: String { name }
    }

    static let suite: [Vector] = [
        Vector(
            name: "get-vanilla",
            request: SigV4Request(method: "GET", encodedPath: "/", headers: suiteHeaders),
            creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stsHash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
        Vector(
            name: "get-vanilla-query-order-key-case",
            request: SigV4Request(method: "GET", encodedPath: "/", query: [("Param2", "value2"), ("Param1", "value1")], headers: suiteHeaders),
            creq: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stsHash: "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ),
        Vector(
            name: "get-vanilla-query-unreserved",
            request: SigV4Request(
                method: "GET", encodedPath: "/",
                query: [("-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")],
                headers: suiteHeaders),
            creq:
                "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stsHash: "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        ),
        Vector(
            name: "get-vanilla-utf8-query",
            request: SigV4Request(method: "GET", encodedPath: "/", query: [("\u{1234}", "bar")], headers: suiteHeaders),
            creq: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stsHash: "",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        ),
        Vector(
            name: "get-utf8",
            request: SigV4Request(method: "GET", encodedPath: SigV4.encodePath(["\u{1234}"]), headers: suiteHeaders),
            creq: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stsHash: "",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        ),
        Vector(
            name: "get-header-value-trim",
            request: SigV4Request(
                method: "GET", encodedPath: "/",
                headers: [
                    ("Host", "example.amazonaws.com"), ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""),
                    ("X-Amz-Date", "20150830T123600Z"),
                ]),
            creq:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\(emptyHash)",
            stsHash: "",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        ),
        Vector(
            name: "get-header-key-duplicate",
            request: SigV4Request(
                method: "GET", encodedPath: "/",
                headers: [
                    ("Host", "example.amazonaws.com"), ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1"),
                    ("X-Amz-Date", "20150830T123600Z"),
                ]),
            creq:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\(emptyHash)",
            stsHash: "",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
        ),
        Vector(
            name: "post-vanilla",
            request: SigV4Request(method: "POST", encodedPath: "/", headers: suiteHeaders),
            creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stsHash: "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ),
        Vector(
            name: "post-x-www-form-urlencoded",
            request: SigV4Request(
                method: "POST", encodedPath: "/",
                headers: [("Content-Type", "application/x-www-form-urlencoded")] + suiteHeaders,
                payload: .of(Array("Param1=value1".utf8))),
            creq:
                "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            stsHash: "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
            authz:
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        ),
    ]

    @Test("AWS SigV4 test suite", arguments: suite)
    func testSuiteVector(_ v: Vector) {
        let signer = Self.suiteSigner
        let creq = signer.canonicalRequest(v.request)
        #expect(creq == v.creq)
        let sts = signer.stringToSign(canonicalRequest: creq, date: Self.suiteDate)
        let lines = sts.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 4)
        #expect(lines.prefix(3) == ["AWS4-HMAC-SHA256", "20150830T123600Z", "20150830/us-east-1/service/aws4_request"])
        if !v.stsHash.isEmpty { #expect(lines.last.map(String.init) == v.stsHash) }
        #expect(signer.authorization(v.request, date: Self.suiteDate) == v.authz)
    }

    @Test("get-vanilla-with-session-token: sign adds the token header and signs it")
    func sessionToken() {
        var creds = Self.suiteSigner.credentials
        creds.sessionToken = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
        let signer = SigV4Signer(credentials: creds, region: "us-east-1", service: "service")
        let request = SigV4Request(method: "GET", encodedPath: "/", headers: [("Host", "example.amazonaws.com")])
        let headers = signer.sign(request, date: Self.suiteDate, contentHashHeader: false)
        #expect(headers.map(\.0) == ["Host", "x-amz-date", "x-amz-security-token", "authorization"])
        #expect(headers.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        var signed = request
        signed.headers = Array(headers.dropLast())
        let creq = signer.canonicalRequest(signed)
        #expect(
            creq
                == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\n\(Self.emptyHash)"
        )
        #expect(
            signer.stringToSign(canonicalRequest: creq, date: Self.suiteDate).hasSuffix(
                "\n067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b"))
        #expect(
            headers.last?.1
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        )
    }

    @Test("S3 documentation: GET Object with a Range header")
    func s3GetObject() {
        let request = SigV4Request(
            method: "GET", encodedPath: "/test.txt",
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", Self.emptyHash),
                ("x-amz-date", "20130524T000000Z"),
            ])
        let creq = Self.s3Signer.canonicalRequest(request)
        #expect(
            creq
                == "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:\(Self.emptyHash)\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\(Self.emptyHash)"
        )
        #expect(
            Self.s3Signer.stringToSign(canonicalRequest: creq, date: Self.s3Date)
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        )
        #expect(
            Self.s3Signer.authorization(request, date: Self.s3Date)
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
    }

    @Test("S3 documentation: GET Bucket (list) through sign()")
    func s3ListObjects() {
        let request = SigV4Request(
            method: "GET", encodedPath: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [("Host", "examplebucket.s3.amazonaws.com")])
        let headers = Self.s3Signer.sign(request, date: Self.s3Date, contentHashHeader: true)
        var signed = request
        signed.headers = Array(headers.dropLast())
        let creq = Self.s3Signer.canonicalRequest(signed)
        #expect(
            creq
                == "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:\(Self.emptyHash)\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n\(Self.emptyHash)"
        )
        #expect(
            Self.s3Signer.stringToSign(canonicalRequest: creq, date: Self.s3Date)
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\ndf57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"
        )
        #expect(
            headers.last?.1
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )
    }

    /// Not a published vector: computed independently with Python's hmac/hashlib from the
    /// algorithm's description. It covers what the published ones do not: S3 path segments with
    /// reserved characters encoded once, an encoded query value, a session token with `/+=`, a
    /// port in the host, and `UNSIGNED-PAYLOAD`.
    @Test("S3 path-style PUT with UNSIGNED-PAYLOAD and a session token")
    func unsignedPayload() {
        let signer = SigV4Signer(
            credentials: AWSCredentials(
                accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                sessionToken: "FQoGZXIvYXdzEXAMPLE/+="),
            region: "us-east-1", service: "s3")
        let path = "/examplebucket/" + SigV4.uriEncode("my dir/a+b=\u{e9}.txt", keepSlash: true)
        #expect(path == "/examplebucket/my%20dir/a%2Bb%3D%C3%A9.txt")
        let request = SigV4Request(
            method: "PUT", encodedPath: path, query: [("uploadId", "abc/="), ("partNumber", "2")], headers: [("host", "127.0.0.1:9000")],
            payload: .unsigned)
        let headers = signer.sign(request, date: Self.s3Date, contentHashHeader: true)
        #expect(headers.first { $0.0 == "x-amz-content-sha256" }?.1 == "UNSIGNED-PAYLOAD")
        var signed = request
        signed.headers = Array(headers.dropLast())
        let creq = signer.canonicalRequest(signed)
        #expect(
            creq
                == "PUT\n/examplebucket/my%20dir/a%2Bb%3D%C3%A9.txt\npartNumber=2&uploadId=abc%2F%3D\nhost:127.0.0.1:9000\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20130524T000000Z\nx-amz-security-token:FQoGZXIvYXdzEXAMPLE/+=\n\nhost;x-amz-content-sha256;x-amz-date;x-amz-security-token\nUNSIGNED-PAYLOAD"
        )
        #expect(signer.stringToSign(canonicalRequest: creq, date: Self.s3Date).hasSuffix("\n9f403132226978945f81f96d735c621249401ba3f911db124a47a2c1a8990f7e"))
        #expect(headers.last?.1.hasSuffix("Signature=68c7ceb54ea910155a6b594aff9a40312401ea78434176f7dc04d448f0f81c05") == true)
    }

    /// AWS's published example of a presigned URL ("Authenticating Requests: Using Query
    /// Parameters (AWS Signature Version 4)", S3 API reference): GET examplebucket/test.txt, valid
    /// for 86400 s from 20130524T000000Z.
    @Test("S3 documentation: presigned GET Object URL")
    func s3PresignedURL() {
        let request = SigV4Request(method: "GET", encodedPath: "/test.txt", headers: [("host", "examplebucket.s3.amazonaws.com")])
        let query = Self.s3Signer.presignedQuery(request, date: Self.s3Date, expires: 86400)
        #expect(
            query
                == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404&X-Amz-SignedHeaders=host"
        )
        // The canonical request the signature covers, as the documentation prints it.
        var signed = request
        signed.payload = .unsigned
        signed.query = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"),
            ("X-Amz-Date", "20130524T000000Z"), ("X-Amz-Expires", "86400"), ("X-Amz-SignedHeaders", "host"),
        ]
        let creq = Self.s3Signer.canonicalRequest(signed)
        #expect(
            Self.s3Signer.stringToSign(canonicalRequest: creq, date: Self.s3Date)
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
        )
        // Expiry is clamped to SigV4's seven days; a session token is signed into the query.
        #expect(Self.s3Signer.presignedQuery(request, date: Self.s3Date, expires: 10_000_000).contains("X-Amz-Expires=604800&"))
        #expect(Self.s3Signer.presignedQuery(request, date: Self.s3Date, expires: -5).contains("X-Amz-Expires=1&"))
        let withToken = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", sessionToken: "tok/+="),
            region: "us-east-1", service: "s3")
        let q = withToken.presignedQuery(request, date: Self.s3Date, expires: 86400)
        // The token is signed into the query (signature computed independently with Python's hmac).
        #expect(
            q
                == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-Security-Token=tok%2F%2B%3D&X-Amz-Signature=ba075f796bcf048a8e835a7682e8a4a960e53791c258963c2b502e0367f10a66&X-Amz-SignedHeaders=host"
        )
        #expect(!q.contains("wJalrXUtnFEMI"))
        #expect(!q.contains("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"))
    }

    @Test("encoding rules")
    func encoding() {
        #expect(SigV4.uriEncode("a b/c~d*e") == "a%20b%2Fc~d%2Ae")
        #expect(SigV4.uriEncode("a b/c", keepSlash: true) == "a%20b/c")
        #expect(SigV4.encodePath(["x y", "%41", "\u{e9}"]) == "/x%20y/%2541/%C3%A9")
        #expect(SigV4.canonicalQuery([("b", ""), ("a", "2"), ("a", "1")]) == "a=1&a=2&b=")
        #expect(SigV4.dateStamp(Self.s3Date) == "20130524T000000Z")
    }

    @Test("credentials never print their secret")
    func redaction() {
        let c = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t-value", sessionToken: "tok3n-value")
        for text in ["\(c)", String(reflecting: c)] {
            #expect(text.contains("AKID"))
            #expect(!text.contains("s3cr3t-value"))
            #expect(!text.contains("tok3n-value"))
        }
    }
}
