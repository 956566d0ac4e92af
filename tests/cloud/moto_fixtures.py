"""Fixtures the AWS tests set up in moto through boto3 (the official AWS SDK for Python,
installed with moto): `elb` makes a VPC, two subnets, an application load balancer, a
target group and two HTTPS listeners (443, 8443) serving a placeholder ACM certificate;
`user ACTION...` makes an IAM user allowed only those actions and prints its access key.
Prints one JSON object."""

import datetime
import json
import sys

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDTESTTESTTEST",
        aws_secret_access_key="test-secret",
    )


def placeholder():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placeholder.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("placeholder.example")]), False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def elb(endpoint):
    cert, key = placeholder()
    arn = client(endpoint, "acm").import_certificate(Certificate=cert, PrivateKey=key)[
        "CertificateArn"
    ]
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b"))
    ]
    lb = client(endpoint, "elbv2")
    lb_arn = lb.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    tg = lb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    listeners = {}
    for port in (443, 8443):
        listeners[str(port)] = lb.create_listener(
            LoadBalancerArn=lb_arn,
            Protocol="HTTPS",
            Port=port,
            Certificates=[{"CertificateArn": arn}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )["Listeners"][0]["ListenerArn"]
    return {"placeholder": arn, "listeners": listeners}


def user(endpoint, actions):
    iam = client(endpoint, "iam")
    name = "user%d" % len(iam.list_users()["Users"])
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions or ["sts:GetCallerIdentity"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


if __name__ == "__main__":
    endpoint, what = sys.argv[1], sys.argv[2]
    out = elb(endpoint) if what == "elb" else user(endpoint, sys.argv[3:])
    print(json.dumps(out))
