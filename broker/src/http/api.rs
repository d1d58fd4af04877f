//! The REST API, as the official SDK's HTTP client (`iggy+http://`) calls it:
//! JSON bodies and replies in the SDK's own types, `Authorization: Bearer`
//! access tokens from `/users/login`, errors as JSON with upstream's codes
//! (401 unauthenticated, 403 unauthorized, 404 not found, 400 otherwise).
//!
//! Every call runs the broker's binary command handlers through
//! [`InProcessClient`], so permissions and validation are the same as on
//! every other transport.

use super::auth::{Bearer, Tokens};
use super::inprocess::InProcessClient;
use super::polled_body;
use super::send_body::{self, BodyError, SendBody};
use crate::broker::Broker;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use bytes::BytesMut;
use iggy_common::change_password::ChangePassword;
use iggy_common::create_consumer_group::CreateConsumerGroup;
use iggy_common::create_partitions::CreatePartitions;
use iggy_common::create_personal_access_token::CreatePersonalAccessToken;
use iggy_common::create_stream::CreateStream;
use iggy_common::create_topic::CreateTopic;
use iggy_common::create_user::CreateUser;
use iggy_common::login_user::LoginUser;
use iggy_common::login_with_personal_access_token::LoginWithPersonalAccessToken;
use iggy_common::store_consumer_offset::StoreConsumerOffset;
use iggy_common::update_permissions::UpdatePermissions;
use iggy_common::update_stream::UpdateStream;
use iggy_common::update_topic::UpdateTopic;
use iggy_common::update_user::UpdateUser;
use iggy_common::{
    ClusterClient, Consumer, ConsumerGroupClient, ConsumerOffsetClient, Identifier, IdentityInfo,
    IggyError, MessageClient, PartitionClient, PersonalAccessTokenClient, PollingKind,
    PollingStrategy, SegmentClient, StreamClient, StreamUpdateOptions, SystemClient, TokenInfo,
    TopicClient, TopicCreateOptions, TopicUpdateOptions, UserClient, UserUpdateOptions,
};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone)]
pub struct Api {
    broker: Arc<Broker>,
    tokens: Arc<Tokens>,
}

pub fn router(broker: Arc<Broker>) -> Router {
    let lifetime = broker.effective.http_token_lifetime;
    let cluster_secret = broker.cluster.as_ref().map(|c| c.secret.as_slice());
    let tokens = Arc::new(Tokens::new(
        &broker.config.http.jwt_secret,
        cluster_secret,
        lifetime,
    ));
    let topic = "/streams/{stream_id}/topics/{topic_id}";
    Router::new()
        .route("/users/login", post(login))
        .route("/users/logout", delete(logout))
        .route("/users/refresh-token", post(refresh))
        .route("/personal-access-tokens/login", post(login_with_token))
        .route("/stats", get(stats))
        .route("/me", get(me))
        .route("/clients", get(clients))
        .route("/clients/{client_id}", get(client))
        .route("/cluster/metadata", get(cluster_metadata))
        .route("/cluster/status", get(super::cluster::status))
        .route("/cluster/partitions", get(super::cluster::partitions))
        .route(
            "/cluster/partitions/{stream_id}/{topic_id}/{partition_id}/reassign",
            post(super::cluster::reassign),
        )
        .route(
            "/cluster/partitions/{stream_id}/{topic_id}/{partition_id}/leader",
            post(super::cluster::move_leader),
        )
        .route(
            "/cluster/topics/{stream_id}/{topic_id}/replication-factor",
            post(super::cluster::change_replication_factor),
        )
        .route("/cluster/rebalance", post(super::cluster::rebalance))
        .route("/cluster/tls", get(super::tls::report))
        .route(
            "/cluster/nodes/{node_id}/safe-to-restart",
            get(super::cluster::safe_to_restart),
        )
        .route(
            "/cluster/nodes/{node_id}/drain",
            post(super::cluster::drain),
        )
        .route(
            "/cluster/nodes/{node_id}",
            delete(super::cluster::remove_node),
        )
        .route("/users", get(users).post(create_user))
        .route(
            "/users/{user_id}",
            get(user).put(update_user).delete(delete_user),
        )
        .route("/users/{user_id}/permissions", put(update_permissions))
        .route("/users/{user_id}/password", put(change_password))
        .route(
            "/personal-access-tokens",
            get(tokens_list).post(create_token),
        )
        .route("/personal-access-tokens/{name}", delete(delete_token))
        .route("/streams", get(streams).post(create_stream))
        .route(
            "/streams/{stream_id}",
            get(stream).put(update_stream).delete(delete_stream),
        )
        .route("/streams/{stream_id}/purge", delete(purge_stream))
        .route(
            "/streams/{stream_id}/topics",
            get(topics).post(create_topic),
        )
        .route(topic, get(topic_get).put(update_topic).delete(delete_topic))
        .route(&format!("{topic}/purge"), delete(purge_topic))
        .route(
            &format!("{topic}/partitions"),
            post(create_partitions).delete(delete_partitions),
        )
        .route(
            &format!("{topic}/partitions/{{partition_id}}"),
            delete(delete_segments),
        )
        .route(
            &format!("{topic}/messages"),
            get(poll_messages)
                .post(send_messages)
                .layer(DefaultBodyLimit::max(send_body::json_limit(
                    broker.effective.max_request_bytes,
                ))),
        )
        .route(
            &format!("{topic}/consumer-offsets"),
            get(get_offset).put(store_offset),
        )
        .route(
            &format!("{topic}/consumer-offsets/{{consumer_id}}"),
            delete(delete_offset),
        )
        .route(
            &format!("{topic}/consumer-groups"),
            get(groups).post(create_group),
        )
        .route(
            &format!("{topic}/consumer-groups/{{group_id}}"),
            get(group).delete(delete_group),
        )
        .with_state(Api { broker, tokens })
}

// ---- errors ----

/// An error reply: upstream's numeric code and name, and a reason — the
/// broker's own when it says more than the code (which broker, which
/// limit).
pub struct ApiError {
    error: IggyError,
    reason: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody {
    id: u32,
    code: &'static str,
    reason: String,
}

impl From<IggyError> for ApiError {
    fn from(error: IggyError) -> Self {
        ApiError {
            error,
            reason: None,
        }
    }
}

impl From<ApiError> for BodyError {
    fn from(e: ApiError) -> Self {
        BodyError::Iggy(e.error)
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> Self {
        ApiError {
            error: IggyError::from_code(e.code()),
            reason: Some(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = self.error.as_code();
        let status = match &self.error {
            IggyError::Unauthenticated | IggyError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            IggyError::Unauthorized => StatusCode::FORBIDDEN,
            e if is_not_found(e) => StatusCode::NOT_FOUND,
            // The data directory is full or failing (`storage::space`).
            IggyError::CannotSaveMessagesToSegment | IggyError::CannotWriteToFile => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            IggyError::Error => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = ErrorBody {
            id,
            code: IggyError::from_code_as_string(id),
            reason: self.reason.unwrap_or_else(|| self.error.to_string()),
        };
        (status, Json(body)).into_response()
    }
}

fn is_not_found(e: &IggyError) -> bool {
    matches!(
        e,
        IggyError::ResourceNotFound(_)
            | IggyError::StreamIdNotFound(_)
            | IggyError::StreamNameNotFound(_)
            | IggyError::TopicIdNotFound(_, _)
            | IggyError::TopicNameNotFound(_, _)
            | IggyError::PartitionNotFound(_, _, _)
            | IggyError::ConsumerGroupIdNotFound(_, _)
            | IggyError::ConsumerGroupNameNotFound(_, _)
            | IggyError::ConsumerOffsetNotFound(_)
    )
}

pub type ApiResult<T> = Result<T, ApiError>;

fn not_found(what: &str) -> ApiError {
    ApiError::from(IggyError::ResourceNotFound(what.to_string()))
}

/// `Some` as JSON, `None` as 404 (the SDK reads 404 as "not found").
fn found<T: Serialize>(value: Option<T>, what: &str) -> ApiResult<Json<T>> {
    value.map(Json).ok_or_else(|| not_found(what))
}

/// A path segment naming a resource: a number is an id, anything else a
/// name (as the SDK writes identifiers into paths).
fn ident(value: &str) -> ApiResult<Identifier> {
    Identifier::from_str(value).map_err(ApiError::from)
}

// ---- authentication ----

/// The authenticated caller of a request, as an in-process client.
pub struct Caller {
    client: InProcessClient,
    bearer: Bearer,
}

impl Caller {
    pub fn user_id(&self) -> u32 {
        self.bearer.user_id
    }
}

impl Api {
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::from(IggyError::Unauthenticated))?;
        let bearer = api.tokens.verify(token)?;
        // A deleted or deactivated user's token no longer works.
        let active = api.broker.metadata.read(|m| {
            m.users
                .get(&bearer.user_id)
                .is_some_and(|u| u.status == crate::metadata::apply::USER_ACTIVE)
        });
        if !active {
            return Err(ApiError::from(IggyError::Unauthenticated));
        }
        let address = parts
            .extensions
            .get::<ConnectInfo<super::ClientAddr>>()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0.0);
        Ok(Caller {
            client: InProcessClient::new(api.broker.clone(), address, bearer.user_id),
            bearer,
        })
    }
}

fn identity(api: &Api, user_id: u32) -> Json<IdentityInfo> {
    let (token, expiry) = api.tokens.issue(user_id);
    Json(IdentityInfo {
        user_id,
        access_token: Some(TokenInfo { token, expiry }),
    })
}

async fn login(
    State(api): State<Api>,
    ConnectInfo(super::ClientAddr(address)): ConnectInfo<super::ClientAddr>,
    Json(body): Json<LoginUser>,
) -> ApiResult<Json<IdentityInfo>> {
    let user_id = api
        .broker
        .authenticate(address.ip(), &body.username, body.password.expose_secret())
        .await?;
    Ok(identity(&api, user_id))
}

async fn login_with_token(
    State(api): State<Api>,
    Json(body): Json<LoginWithPersonalAccessToken>,
) -> ApiResult<Json<IdentityInfo>> {
    let user_id = api
        .broker
        .authenticate_token(body.token.expose_secret())
        .await?;
    Ok(identity(&api, user_id))
}

async fn logout(State(api): State<Api>, caller: Caller) -> StatusCode {
    api.tokens.revoke(&caller.bearer);
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
struct RefreshToken {
    token: String,
}

/// Exchange a valid token for a new one; the old one is revoked.
async fn refresh(
    State(api): State<Api>,
    Json(body): Json<RefreshToken>,
) -> ApiResult<Json<IdentityInfo>> {
    let bearer = api.tokens.verify(&body.token)?;
    api.tokens.revoke(&bearer);
    Ok(identity(&api, bearer.user_id))
}

// ---- system ----

async fn stats(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_stats().await?))
}

async fn me(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_me().await?))
}

async fn clients(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_clients().await?))
}

async fn client(caller: Caller, Path(client_id): Path<u32>) -> ApiResult<impl IntoResponse> {
    found(caller.client.get_client(client_id).await?, "client")
}

async fn cluster_metadata(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_cluster_metadata().await?))
}

// ---- users and tokens ----

async fn users(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_users().await?))
}

async fn user(caller: Caller, Path(user_id): Path<String>) -> ApiResult<impl IntoResponse> {
    found(caller.client.get_user(&ident(&user_id)?).await?, "user")
}

async fn create_user(caller: Caller, Json(body): Json<CreateUser>) -> ApiResult<impl IntoResponse> {
    let user = caller
        .client
        .create_user(
            &body.username,
            body.password.expose_secret(),
            body.status,
            body.permissions,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn update_user(
    caller: Caller,
    Path(user_id): Path<String>,
    Json(body): Json<UpdateUser>,
) -> ApiResult<StatusCode> {
    let options = UserUpdateOptions { raw: body.options };
    caller
        .client
        .update_user(
            &ident(&user_id)?,
            body.username.as_deref(),
            body.status,
            &options,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user(caller: Caller, Path(user_id): Path<String>) -> ApiResult<StatusCode> {
    caller.client.delete_user(&ident(&user_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update_permissions(
    caller: Caller,
    Path(user_id): Path<String>,
    Json(body): Json<UpdatePermissions>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .update_permissions(&ident(&user_id)?, body.permissions)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_password(
    caller: Caller,
    Path(user_id): Path<String>,
    Json(body): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .change_password(
            &ident(&user_id)?,
            body.current_password.expose_secret(),
            body.new_password.expose_secret(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tokens_list(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_personal_access_tokens().await?))
}

async fn create_token(
    caller: Caller,
    Json(body): Json<CreatePersonalAccessToken>,
) -> ApiResult<impl IntoResponse> {
    let token = caller
        .client
        .create_personal_access_token(&body.name, body.expiry)
        .await?;
    Ok((StatusCode::CREATED, Json(token)))
}

async fn delete_token(caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    caller.client.delete_personal_access_token(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- streams, topics, partitions, segments ----

async fn streams(caller: Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_streams().await?))
}

async fn stream(caller: Caller, Path(stream_id): Path<String>) -> ApiResult<impl IntoResponse> {
    found(
        caller.client.get_stream(&ident(&stream_id)?).await?,
        "stream",
    )
}

async fn create_stream(
    caller: Caller,
    Json(body): Json<CreateStream>,
) -> ApiResult<impl IntoResponse> {
    let stream = caller.client.create_stream(&body.name).await?;
    Ok((StatusCode::CREATED, Json(stream)))
}

async fn update_stream(
    caller: Caller,
    Path(stream_id): Path<String>,
    Json(body): Json<UpdateStream>,
) -> ApiResult<StatusCode> {
    let options = StreamUpdateOptions { raw: body.options };
    caller
        .client
        .update_stream(&ident(&stream_id)?, &body.name, &options)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_stream(caller: Caller, Path(stream_id): Path<String>) -> ApiResult<StatusCode> {
    caller.client.delete_stream(&ident(&stream_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge_stream(caller: Caller, Path(stream_id): Path<String>) -> ApiResult<StatusCode> {
    caller.client.purge_stream(&ident(&stream_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn topics(caller: Caller, Path(stream_id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(Json(caller.client.get_topics(&ident(&stream_id)?).await?))
}

async fn topic_get(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let topic = caller
        .client
        .get_topic(&ident(&stream_id)?, &ident(&topic_id)?)
        .await?;
    found(topic, "topic")
}

async fn create_topic(
    caller: Caller,
    Path(stream_id): Path<String>,
    Json(body): Json<CreateTopic>,
) -> ApiResult<impl IntoResponse> {
    // Fixed fields carry "server default" as their zero values.
    let options = TopicCreateOptions {
        partitions_count: Some(body.partitions_count),
        compression_algorithm: Some(body.compression_algorithm),
        message_expiry: Some(body.message_expiry),
        max_topic_size: Some(body.max_topic_size),
        raw: body.options,
        ..Default::default()
    };
    let topic = caller
        .client
        .create_topic(&ident(&stream_id)?, &body.name, &options)
        .await?;
    Ok((StatusCode::CREATED, Json(topic)))
}

async fn update_topic(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Json(body): Json<UpdateTopic>,
) -> ApiResult<StatusCode> {
    let options = TopicUpdateOptions {
        compression_algorithm: body.compression_algorithm,
        message_expiry: body.message_expiry,
        max_topic_size: body.max_topic_size,
        raw: body.options,
    };
    caller
        .client
        .update_topic(
            &ident(&stream_id)?,
            &ident(&topic_id)?,
            &body.name,
            &options,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_topic(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .delete_topic(&ident(&stream_id)?, &ident(&topic_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge_topic(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .purge_topic(&ident(&stream_id)?, &ident(&topic_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_partitions(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Json(body): Json<CreatePartitions>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .create_partitions(
            &ident(&stream_id)?,
            &ident(&topic_id)?,
            body.partitions_count,
        )
        .await?;
    Ok(StatusCode::CREATED)
}

/// Query parameters, read as strings: the SDK's query types flatten nested
/// values, which typed query extraction cannot read back.
type QueryMap = Query<HashMap<String, String>>;

fn param<T: FromStr>(query: &HashMap<String, String>, key: &str) -> ApiResult<Option<T>> {
    query
        .get(key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| ApiError::from(IggyError::InvalidFormat))
        })
        .transpose()
}

fn required<T: FromStr>(query: &HashMap<String, String>, key: &str) -> ApiResult<T> {
    param(query, key)?.ok_or(ApiError::from(IggyError::InvalidFormat))
}

async fn delete_partitions(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Query(query): QueryMap,
) -> ApiResult<StatusCode> {
    let count = required(&query, "partitions_count")?;
    caller
        .client
        .delete_partitions(&ident(&stream_id)?, &ident(&topic_id)?, count)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_segments(
    caller: Caller,
    Path((stream_id, topic_id, partition_id)): Path<(String, String, u32)>,
    Query(query): QueryMap,
) -> ApiResult<StatusCode> {
    let count = required(&query, "segments_count")?;
    caller
        .client
        .delete_segments(&ident(&stream_id)?, &ident(&topic_id)?, partition_id, count)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- messages and offsets ----

fn consumer(query: &HashMap<String, String>) -> ApiResult<Consumer> {
    let id = query.get("consumer_id").map_or("0", String::as_str);
    Ok(Consumer::new(ident(id)?))
}

async fn poll_messages(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Query(query): QueryMap,
) -> ApiResult<impl IntoResponse> {
    let kind = match query.get("kind") {
        Some(kind) => {
            PollingKind::from_str(kind).map_err(|_| ApiError::from(IggyError::InvalidFormat))?
        }
        None => PollingKind::Offset,
    };
    let strategy = PollingStrategy {
        kind,
        value: param(&query, "value")?.unwrap_or(0),
    };
    let polled = caller
        .client
        .poll_messages(
            &ident(&stream_id)?,
            &ident(&topic_id)?,
            Some(param(&query, "partition_id")?.unwrap_or(0)),
            &consumer(&query)?,
            &strategy,
            param(&query, "count")?.unwrap_or(10),
            param(&query, "auto_commit")?.unwrap_or(false),
        )
        .await?;
    let json = polled_body::to_json(&polled).map_err(|_| ApiError::from(IggyError::Error))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// The JSON body is encoded straight into the binary request
/// ([`SendBody`]) and stored by the binary protocol's send (without
/// hashing the checksums it just computed), held to the same
/// `limits.max_request_size` as a binary frame.
async fn send_messages(
    State(api): State<Api>,
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    headers: HeaderMap,
    json: bytes::Bytes,
) -> Result<StatusCode, BodyError> {
    let body = SendBody::from_request(&headers, &json)?;
    let mut request = BytesMut::new();
    body.encode(&ident(&stream_id)?, &ident(&topic_id)?, &mut request)?;
    let max = api.broker.effective.max_request_bytes;
    if request.len() > max {
        return Err(BodyError::TooLarge {
            size: request.len(),
            max,
        });
    }
    caller.client.send_encoded(&mut request).await?;
    Ok(StatusCode::CREATED)
}

async fn store_offset(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Json(body): Json<StoreConsumerOffset>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .store_consumer_offset(
            &body.consumer,
            &ident(&stream_id)?,
            &ident(&topic_id)?,
            body.partition_id,
            body.offset,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_offset(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Query(query): QueryMap,
) -> ApiResult<impl IntoResponse> {
    let offset = caller
        .client
        .get_consumer_offset(
            &consumer(&query)?,
            &ident(&stream_id)?,
            &ident(&topic_id)?,
            param(&query, "partition_id")?,
        )
        .await?;
    found(offset, "consumer offset")
}

async fn delete_offset(
    caller: Caller,
    Path((stream_id, topic_id, consumer_id)): Path<(String, String, String)>,
    Query(query): QueryMap,
) -> ApiResult<StatusCode> {
    caller
        .client
        .delete_consumer_offset(
            &Consumer::new(ident(&consumer_id)?),
            &ident(&stream_id)?,
            &ident(&topic_id)?,
            param(&query, "partition_id")?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- consumer groups ----

async fn groups(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let groups = caller
        .client
        .get_consumer_groups(&ident(&stream_id)?, &ident(&topic_id)?)
        .await?;
    Ok(Json(groups))
}

async fn group(
    caller: Caller,
    Path((stream_id, topic_id, group_id)): Path<(String, String, String)>,
) -> ApiResult<impl IntoResponse> {
    let group = caller
        .client
        .get_consumer_group(&ident(&stream_id)?, &ident(&topic_id)?, &ident(&group_id)?)
        .await?;
    found(group, "consumer group")
}

async fn create_group(
    caller: Caller,
    Path((stream_id, topic_id)): Path<(String, String)>,
    Json(body): Json<CreateConsumerGroup>,
) -> ApiResult<impl IntoResponse> {
    let group = caller
        .client
        .create_consumer_group(&ident(&stream_id)?, &ident(&topic_id)?, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

async fn delete_group(
    caller: Caller,
    Path((stream_id, topic_id, group_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    caller
        .client
        .delete_consumer_group(&ident(&stream_id)?, &ident(&topic_id)?, &ident(&group_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
