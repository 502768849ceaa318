//! review-page: the page behind the nightly e-mail's review links,
//! `GET|POST /review/{token}` on the stack's HTTP API.
//!
//! What a link does is `hubwarp::review::page`'s (a `GET` shows, only the
//! form's `POST` resolves, every refusal changes nothing); this crate is
//! the HTTP edge: the token from the path, the method, the headers.

pub mod config;

use hubwarp::hubspot::crm::HubspotClient;
use hubwarp::mapping::MappingSet;
use hubwarp::review::page::{self, Page, Ports};
use hubwarp::review::{ReviewKey, load_key};
use hubwarp::store::DynamoSyncStore;
use hubwarp::warp::WarpClient;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

pub use config::Config;
pub use hubwarp::startup::StartupError;

/// Everything a request needs, built once per cold start.
pub struct ReviewPage {
    pub warp: WarpClient,
    pub hubspot: HubspotClient,
    pub store: DynamoSyncStore,
    pub mappings: MappingSet,
    pub key: ReviewKey,
}

impl ReviewPage {
    /// Reads the link key and the API tokens (Secrets Manager when so
    /// configured) and builds the clients once.
    pub async fn build(config: &Config, aws: &aws_config::SdkConfig) -> Result<Self, StartupError> {
        Ok(Self {
            warp: config.api.warp_client(aws).await?,
            hubspot: config.api.hubspot_client(aws).await?,
            store: DynamoSyncStore::new(
                hubwarp::aws::dynamodb(aws),
                config.tables.clone(),
                hubwarp::reconcile::aws::SYNC_LOG_RETENTION,
            ),
            mappings: config.mappings.clone(),
            key: load_key(&config.key, aws).await?,
        })
    }

    /// One request: the link's page, whatever the outcome (a refused link
    /// is a page with a 4xx, never an error of the function).
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let ports = Ports {
            warp: &self.warp,
            hubspot: &self.hubspot,
            store: &self.store,
            mappings: &self.mappings,
        };
        let token = token(&req);
        let now = hubwarp::time::now_ms() / 1000;
        let page = match *req.method() {
            Method::GET => page::get(&ports, &self.key, &token, now).await,
            Method::POST => page::post(&ports, &self.key, &token, now).await,
            _ => {
                let mut answer = respond(&page::not_allowed());
                answer
                    .headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
                return answer;
            }
        };
        respond(&page)
    }
}

/// The `{token}` of the route: API Gateway gives it as a path parameter;
/// a Function URL or `cargo lambda watch` only the path, whose segment
/// after `/review/` it is.
fn token(req: &Request) -> String {
    if let Some(token) = req.path_parameters().first("token") {
        return token.to_string();
    }
    let path = req.raw_http_path();
    path.rsplit_once("/review/")
        .map(|(_, t)| t.trim_end_matches('/').to_string())
        .unwrap_or_default()
}

fn respond(page: &Page) -> Response<Body> {
    let mut answer = Response::new(Body::Text(page.html.clone()));
    *answer.status_mut() =
        StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in page.headers() {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            answer.headers_mut().insert(name, value);
        }
    }
    answer
}
