import Foundation
import NIOCore
import RepriseCore
import Testing

@testable import RepriseArtifacts

@Suite("S3 XML answers")
struct S3XMLTests {
    static let page = """
        <?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>bucket</Name><Prefix>p/run/</Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys>
          <Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
          <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
          <Contents><Key>p/run/</Key><Size>0</Size></Contents>
          <Contents><Key>p/run/model.pkl</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>
          <Contents><Key>p/run/a+b%2Bc%26%C3%A9.txt</Key><Size>7</Size></Contents>
          <CommonPrefixes><Prefix>p/run/dir/</Prefix></CommonPrefixes>
          <CommonPrefixes><Prefix>p/run/my+folder/</Prefix></CommonPrefixes>
        </ListBucketResult>
        """

    @Test("a ListObjectsV2 page: objects, folders, the continuation token, url-decoded keys")
    func listPage() throws {
        let page = try S3ListPage.parse(Array(Self.page.utf8), urlEncoded: true)
        #expect(page.isTruncated)
        #expect(page.nextContinuationToken == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        #expect(page.objects == [
            S3Object(key: "p/run/", size: 0), S3Object(key: "p/run/model.pkl", size: 1234), S3Object(key: "p/run/a b+c&\u{e9}.txt", size: 7),
        ])
        #expect(page.commonPrefixes == ["p/run/dir/", "p/run/my folder/"])
        let entries = page.entries(under: "p/run/")
        #expect(entries == [
            ArtifactFileInfo(path: "model.pkl", isDir: false, fileSize: 1234),
            ArtifactFileInfo(path: "a b+c&\u{e9}.txt", isDir: false, fileSize: 7),
            ArtifactFileInfo(path: "dir", isDir: true, fileSize: nil),
            ArtifactFileInfo(path: "my folder", isDir: true, fileSize: nil),
        ])
    }

    @Test("names that start with a mark: the '/' before them is still a separator (bytes, not characters)")
    func markedNames() {
        var page = S3ListPage()
        page.objects = [S3Object(key: "p/\u{e0}/\u{1F3FB}\u{b9}\u{106}", size: 6), S3Object(key: "p/\u{e0}/x/\u{301}y", size: 1)]
        page.commonPrefixes = ["p/\u{e0}/\u{301}dir/", "p/\u{e0}/a/\u{301}b/"]
        #expect(page.entries(under: "p/\u{e0}/") == [
            ArtifactFileInfo(path: "\u{1F3FB}\u{b9}\u{106}", isDir: false, fileSize: 6),
            ArtifactFileInfo(path: "\u{301}dir", isDir: true, fileSize: nil),
        ])
    }

    @Test("the last page and an empty one")
    func lastPage() throws {
        let last = try S3ListPage.parse(
            Array("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>3</Size></Contents></ListBucketResult>".utf8),
            urlEncoded: false)
        #expect(!last.isTruncated && last.nextContinuationToken == nil)
        #expect(last.objects == [S3Object(key: "k", size: 3)])
        let empty = try S3ListPage.parse(Array("<ListBucketResult/>".utf8), urlEncoded: true)
        #expect(empty == S3ListPage())
    }

    @Test("malformed or hostile answers are refused, not trusted", arguments: [
        "",
        "<ListBucketResult>",
        "<ListBucketResult></Other>",
        "<Error><Code>x</Code></Error>",
        "<!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult>&a;</ListBucketResult>",
        "<ListBucketResult>&unknown;</ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>%zz</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-5</Size></Contents></ListBucketResult>",
        "<ListBucketResult></ListBucketResult><ListBucketResult></ListBucketResult>",
        String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40),
    ])
    func refused(_ xml: String) {
        #expect(throws: S3XML.ParseError.self) { try S3ListPage.parse(Array(xml.utf8), urlEncoded: true) }
    }

    @Test("entities, character references, CDATA, comments, attributes with '>'")
    func xmlDetails() throws {
        let root = try S3XML.parse(
            Array("<?xml version=\"1.0\"?><!-- c --><r a='x>y' b=\"1\"><k>&lt;&amp;&#65;&#x42;&apos;</k><c><![CDATA[<raw>&]]></c><e/></r>".utf8))
        #expect(root.name == "r")
        #expect(root.value("k") == "<&AB'")
        #expect(root.value("c") == "<raw>&")
        #expect(root.child("e") != nil)
        #expect(S3XML.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&apos;")
    }

    @Test("error bodies")
    func errors() {
        let e = S3ErrorBody.parse(Array("<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><StringToSign>x</StringToSign></Error>".utf8))
        #expect(e.code == "SignatureDoesNotMatch")
        #expect(e.message?.hasPrefix("The request signature") == true)
        #expect(S3ErrorBody.parse([UInt8]()) == S3ErrorBody())
        #expect(S3ErrorBody.parse(Array("not xml".utf8)) == S3ErrorBody())
    }
}

@Suite("Multipart part splitting")
struct PartSplitterTests {
    /// Feeds `total` bytes in chunks of `chunk` and returns the part sizes and the last part.
    func split(total: Int, chunk: Int, partSize: Int) -> (parts: [Int], last: Int, bytes: [UInt8]) {
        var splitter = PartSplitter(partSize: partSize)
        var parts: [Int] = []
        var out: [UInt8] = []
        var sent = 0
        while sent < total {
            let n = min(chunk, total - sent)
            let bytes = (sent..<(sent + n)).map { UInt8(truncatingIfNeeded: $0) }
            for p in splitter.append(ByteBuffer(bytes: bytes)) {
                parts.append(p.readableBytes)
                out += p.readableBytesView
            }
            #expect(splitter.pending.readableBytes <= partSize)  // never more than a part waits
            sent += n
        }
        let last = splitter.finish()
        out += last.readableBytesView
        return (parts, last.readableBytes, out)
    }

    @Test("a body no larger than a part stays one piece (one PUT)", arguments: [0, 1, 99, 100])
    func small(total: Int) {
        let r = split(total: total, chunk: 7, partSize: 100)
        #expect(r.parts.isEmpty)
        #expect(r.last == total)
    }

    @Test("larger bodies: full parts, then a last part of 1...partSize bytes, bytes in order", arguments: [
        (101, 7), (200, 7), (201, 50), (1000, 1), (1001, 1000), (350, 350), (250, 1000),
    ])
    func large(total: Int, chunk: Int) {
        let r = split(total: total, chunk: chunk, partSize: 100)
        #expect(r.parts.allSatisfy { $0 == 100 })
        #expect((1...100).contains(r.last))
        #expect(r.parts.count * 100 + r.last == total)
        #expect(r.bytes == (0..<total).map { UInt8(truncatingIfNeeded: $0) })
    }
}

@Suite("S3 locations and settings")
struct S3SettingsTests {
    @Test("s3:// URIs")
    func locations() throws {
        let l = try S3Location(uri: "s3://my-bucket/some/prefix/")
        #expect(l.bucket == "my-bucket" && l.prefix == "some/prefix")
        #expect(l.description == "s3://my-bucket/some/prefix")
        #expect(try S3Location(uri: "s3://bucket").prefix == "")
        for bad in ["s3://", "s3://B", "s3://Bucket/x", "s3://bu_cket/x", "s3://bucket/a/../b", "s3://bucket/a//b", "file:///x", "s3://-bucket"] {
            #expect(throws: RepriseError.self) { try S3Location(uri: bad) }
        }
        #expect(l.contains(try S3Location(uri: "s3://my-bucket/some/prefix/runs")))
        #expect(!l.contains(try S3Location(uri: "s3://my-bucket/some/prefixes")))
        #expect(!l.contains(try S3Location(uri: "s3://other/some/prefix")))
    }

    @Test("the environment, as boto3 reads it")
    func environment() throws {
        let env = [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok",
            "AWS_DEFAULT_REGION": "eu-west-1", "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        ]
        let s = try S3Settings.fromEnvironment(env)
        #expect(s.pathStyle && s.scheme == "http" && s.host == "127.0.0.1" && s.port == 9000)
        #expect(s.region == "eu-west-1")
        #expect(s.credentials == AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "tok"))
        #expect(s.hostHeader(bucket: "b") == "127.0.0.1:9000")
        var aws = env
        aws["MLFLOW_S3_ENDPOINT_URL"] = nil
        aws["AWS_REGION"] = "us-west-2"
        let a = try S3Settings.fromEnvironment(aws)
        #expect(!a.pathStyle && a.region == "us-west-2")
        #expect(a.hostHeader(bucket: "b") == "b.s3.us-west-2.amazonaws.com")
        #expect(a.hostHeader(bucket: "with.dots") == "s3.us-west-2.amazonaws.com")
        #expect(try S3Settings.fromEnvironment(["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"]).region == "us-east-1")
        do {
            _ = try S3Settings.fromEnvironment(["AWS_ACCESS_KEY_ID": "k"])
            Issue.record("missing secret accepted")
        } catch let e as RepriseError {
            #expect(e.message.contains("AWS_SECRET_ACCESS_KEY"))
        }
        #expect(throws: RepriseError.self) { try S3Settings.fromEnvironment(env.merging(["MLFLOW_S3_ENDPOINT_URL": "ftp://x"]) { $1 }) }
        #expect(throws: RepriseError.self) { try S3Settings.fromEnvironment(env.merging(["REPRISE_S3_PART_SIZE": "1024"]) { $1 }) }
    }

    @Test("keys, URIs and locations under the root; an unreachable store is a clear 503")
    func keys() async throws {
        var settings = try S3Settings.fromEnvironment([
            "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "SeCrEt-9f8e", "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:1",
        ])
        settings.connectTimeoutSeconds = 1  // a refused connection is retried until then
        let repo = S3ArtifactRepository(location: try S3Location(uri: "s3://bucket/pre"), settings: settings)
        do {
            #expect(try repo.key(["1", "run", "a b.txt"]) == "pre/1/run/a b.txt")
            #expect(try repo.key([]) == "pre")
            #expect(throws: RepriseError.self) { try repo.key(["a", ".."]) }
            #expect(repo.uri(["1", "x"]) == "s3://bucket/pre/1/x")
            #expect(try repo.components(of: "s3://bucket/pre/1/x/") == ["1", "x"])
            #expect(try repo.components(of: "s3://bucket/pre") == [])
            #expect(try repo.components(of: "s3://bucket/prefix/1") == nil)
            #expect(try repo.components(of: "s3://other/pre/1") == nil)
            #expect(throws: RepriseError.self) { try repo.components(of: "s3://bucket/pre/a/../b") }
            #expect(throws: RepriseError.self) { try repo.components(of: "s3://bucket/pre/a//b") }
            // Nothing listens on port 1.
            do {
                _ = try await repo.kind(["x"])
                Issue.record("expected an error")
            } catch let e as RepriseError {
                #expect(e.code == .temporarilyUnavailable)
                #expect(e.message.contains("bucket 'bucket'"))
                #expect(!e.message.contains("SeCrEt-9f8e"))
            }
        } catch {
            try await repo.shutdown()
            throw error
        }
        try await repo.shutdown()
    }
}
