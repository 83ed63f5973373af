//! Log delivery configurations (slow-log, engine-log): recorded and reported as
//! ElastiCache reports them. `Enabled=false` in a modify removes that log type.

use crate::error::ApiError;
use aws_query::{Params, XmlWriter};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDelivery {
    pub log_type: String,
    pub destination_type: String,
    /// CloudWatch log group or Firehose delivery stream.
    pub destination: String,
    pub log_format: String,
}

/// Apply `LogDeliveryConfigurations.LogDeliveryConfigurationRequest.N` to `current`.
pub fn apply(current: &mut Vec<LogDelivery>, p: &Params) -> Result<(), ApiError> {
    let Some(requests) = p.struct_list(
        "LogDeliveryConfigurations",
        "LogDeliveryConfigurationRequest",
    )?
    else {
        return Ok(());
    };
    for r in requests {
        let log_type = r.required("LogType")?.to_string();
        if log_type != "slow-log" && log_type != "engine-log" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid LogType {log_type}: use slow-log or engine-log."
            )));
        }
        current.retain(|c| c.log_type != log_type);
        if r.bool("Enabled")? == Some(false) {
            continue;
        }
        let destination_type = r.required("DestinationType")?.to_string();
        let details = r.nested("DestinationDetails");
        let destination = match destination_type.as_str() {
            "cloudwatch-logs" => details
                .nested("CloudWatchLogsDetails")
                .required("LogGroup")?
                .to_string(),
            "kinesis-firehose" => details
                .nested("KinesisFirehoseDetails")
                .required("DeliveryStream")?
                .to_string(),
            other => {
                return Err(ApiError::InvalidParameterValue(format!(
                    "Invalid DestinationType {other}: use cloudwatch-logs or kinesis-firehose."
                )))
            }
        };
        let log_format = r.str("LogFormat").unwrap_or("text").to_string();
        if log_format != "text" && log_format != "json" {
            return Err(ApiError::InvalidParameterValue(format!(
                "Invalid LogFormat {log_format}: use text or json."
            )));
        }
        current.push(LogDelivery {
            log_type,
            destination_type,
            destination,
            log_format,
        });
    }
    current.sort_by(|a, b| a.log_type.cmp(&b.log_type));
    Ok(())
}

pub fn write(w: &mut XmlWriter, items: &[LogDelivery]) {
    w.list(
        "LogDeliveryConfigurations",
        "LogDeliveryConfiguration",
        items,
        |w, l| {
            w.text("LogType", &l.log_type)
                .text("DestinationType", &l.destination_type)
                .element("DestinationDetails", |w| {
                    if l.destination_type == "cloudwatch-logs" {
                        w.element("CloudWatchLogsDetails", |w| {
                            w.text("LogGroup", &l.destination);
                        });
                    } else {
                        w.element("KinesisFirehoseDetails", |w| {
                            w.text("DeliveryStream", &l.destination);
                        });
                    }
                })
                .text("LogFormat", &l.log_format)
                .text("Status", "active");
        },
    );
}
