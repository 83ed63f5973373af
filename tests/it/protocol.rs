//! The query protocol at the byte level: envelopes, error codes, statuses.

use crate::helpers::{xml_value, Server};

#[tokio::test]
async fn errors_use_the_aws_envelope_and_never_5xx() {
    let s = Server::start().await;
    let client = reqwest::Client::new();

    // No Action at all.
    let r = client
        .post(s.endpoint())
        .body("Version=2015-02-02")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let rid = r
        .headers()
        .get("x-amzn-RequestId")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body = r.text().await.unwrap();
    assert!(
        body.starts_with(
            "<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\">"
        ),
        "{body}"
    );
    assert_eq!(xml_value(&body, "Code"), Some("MissingAction"));
    assert_eq!(xml_value(&body, "Type"), Some("Sender"));
    // RequestId is a sibling of <Error>, and matches the header.
    assert!(
        body.contains(&format!(
            "</Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )),
        "{body}"
    );

    let (st, body) = s.call("FlyToTheMoon", &[]).await;
    assert_eq!((st, xml_value(&body, "Code")), (400, Some("InvalidAction")));

    let (st, body) = s.call("CreateCacheCluster", &[]).await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("MissingParameter"))
    );
    assert!(body.contains("CacheClusterId"), "{body}");

    let (st, body) = s
        .call("DescribeCacheClusters", &[("MaxRecords", "5")])
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("InvalidParameterValue"))
    );

    let (st, body) = s
        .call("DescribeCacheClusters", &[("ShowCacheNodeInfo", "yes")])
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("InvalidParameterValue"))
    );

    let (st, body) = s
        .call(
            "CreateCacheCluster",
            &[
                ("CacheClusterId", "c1"),
                ("CacheNodeType", "cache.enormous"),
            ],
        )
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("InvalidParameterValue"))
    );

    let (st, body) = s
        .call(
            "CreateCacheCluster",
            &[("CacheClusterId", "c1"), ("Engine", "oracle")],
        )
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("InvalidParameterValue"))
    );

    let (st, body) = s
        .call("CreateCacheCluster", &[("CacheClusterId", "1-bad--id")])
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (400, Some("InvalidParameterValue"))
    );

    let (st, body) = s
        .call("DescribeCacheClusters", &[("CacheClusterId", "nope")])
        .await;
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (404, Some("CacheClusterNotFound"))
    );

    let (st, body) = s
        .call("ListTagsForResource", &[("ResourceName", "not-an-arn")])
        .await;
    assert_eq!((st, xml_value(&body, "Code")), (400, Some("InvalidARN")));

    // Garbage bodies are client errors too.
    let r = client
        .post(s.endpoint())
        .body(vec![0xffu8, 0x00, b'&', b'=', b'%', b'Z'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Wrong API version.
    let r = client
        .post(s.endpoint())
        .form(&[
            ("Action", "DescribeCacheClusters"),
            ("Version", "2012-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn success_envelope_get_requests_and_regions() {
    let s = Server::start().await;
    let r = reqwest::get(format!(
        "{}/?Action=DescribeCacheClusters&Version=2015-02-02",
        s.endpoint()
    ))
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("content-type").unwrap(), "text/xml");
    let body = r.text().await.unwrap();
    assert!(body.starts_with(
        "<DescribeCacheClustersResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><DescribeCacheClustersResult>"
    ), "{body}");
    assert!(body.contains("<ResponseMetadata><RequestId>"), "{body}");

    // State is per region, taken from the SigV4 credential scope.
    let (st, body) = s
        .call_in(
            "eu-west-1",
            "CreateCacheCluster",
            &[("CacheClusterId", "Regional"), ("Engine", "redis")],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(xml_value(&body, "CacheClusterId"), Some("regional"));
    assert_eq!(
        xml_value(&body, "ARN"),
        Some("arn:aws:elasticache:eu-west-1:000000000000:cluster:regional")
    );
    assert_eq!(
        xml_value(&body, "PreferredAvailabilityZone"),
        Some("eu-west-1a")
    );
    let (st, _) = s
        .call_in(
            "us-east-1",
            "DescribeCacheClusters",
            &[("CacheClusterId", "regional")],
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call_in(
            "eu-west-1",
            "DescribeCacheClusters",
            &[("CacheClusterId", "REGIONAL")],
        )
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn sts_get_caller_identity_on_the_same_port() {
    let s = Server::start_with_args(&["--account-id", "123456789012"]).await;
    let r = reqwest::Client::new()
        .post(s.endpoint())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261126/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(xml_value(&body, "Account"), Some("123456789012"));
    assert_eq!(
        xml_value(&body, "Arn"),
        Some("arn:aws:iam::123456789012:root")
    );
}

#[tokio::test]
async fn strict_mode_verifies_sigv4_signatures() {
    use aws_sdk_elasticache::error::ProvideErrorMetadata;
    let s = Server::start_with_args(&[
        "--require-signatures",
        "--credentials",
        "AKIDGOOD:goodsecret,AKID2:other",
    ])
    .await;
    let signed = |key: &str, secret: &str| {
        use aws_sdk_elasticache::config::{Credentials, Region};
        let conf = aws_sdk_elasticache::Config::builder()
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .endpoint_url(s.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(key, secret, None, None, "static"))
            .build();
        aws_sdk_elasticache::Client::from_conf(conf)
    };
    signed("AKIDGOOD", "goodsecret")
        .describe_cache_clusters()
        .send()
        .await
        .expect("a correctly signed request is accepted");
    let e = signed("AKIDGOOD", "wrong")
        .describe_cache_clusters()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("SignatureDoesNotMatch"));
    let e = signed("AKIDNOBODY", "x")
        .describe_cache_clusters()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidClientTokenId"));
    let (st, body) = {
        let r = reqwest::Client::new()
            .post(s.endpoint())
            .form(&[
                ("Action", "DescribeCacheClusters"),
                ("Version", "2015-02-02"),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(
        (st, xml_value(&body, "Code")),
        (403, Some("MissingAuthenticationToken"))
    );
}
