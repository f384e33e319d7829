"""The Simplified Chinese text of each setting for the configuration reference (``bot/config/reference.py``).

Keyed by environment variable and by the English section title of ``bot/config/settings.py``. A setting
declared there without an entry here makes ``python -m bot config-docs`` and its test fail, so the Chinese
page never silently falls back to English; when a setting's English text changes, change its entry here too.
"""

from __future__ import annotations

SECTIONS_ZH: dict[str, str] = {
    "Required": "必填",
    "Images API": "Images API",
    "Storage": "存储",
    "Quotas (bot-wide defaults; moderators override them per server, role and user)": (
        "配额（全机器人默认值；管理员可按服务器、身份组和用户覆盖）"
    ),
    "Bot-wide caps (all servers together: what your API key pays for)": (
        "全机器人上限（所有服务器合计：你的 API 密钥所支付的部分）"
    ),
    "Servers: who your API key pays for (see docs/setup/public-or-private.md)": (
        "服务器：你的 API 密钥为谁付费（见 docs/setup/public-or-private.md）"
    ),
    "Load and pacing": "负载与节奏",
    "Editing": "修改图片",
    "Discord": "Discord",
    "Logging": "日志",
    "Operations": "运维",
    "Scaling out": "横向扩展",
}

SETTINGS_ZH: dict[str, str] = {
    "DISCORD_TOKEN": ("机器人令牌：https://discord.com/developers/applications → 你的应用 → Bot → Reset Token。"),
    "OPENAI_API_KEY": "你的 OpenAI API 密钥（或 OpenAI 兼容网关的密钥）。DEMO_MODE=true 时不需要。",
    "OPENAI_BASE_URL": (
        "Images API 的基础 URL。指向任何 OpenAI 兼容网关（例如 new-api）即可改用该网关。网关：new-api、one-api 和 "
        "LiteLLM 代理无需改动即可使用（见 docs/setup/gateways.md）：机器人会发现不能流式返回图片的网关，对该 URL "
        "改用普通请求，并且从不重试网关的 5xx（其上游可能已经向你收费）。new-api：在网关上设置 "
        "STREAMING_TIMEOUT=300（或更大）和 STREAM_SCANNER_MAX_BUFFER_MB=64（或更大）；one-api 不能修改图片。"
    ),
    "IMAGE_MODEL": (
        "图像模型。gpt-image-2 及更新的模型接受任意尺寸；未知名称（网关别名）使用保守的默认值"
        "（三种经典尺寸，不支持透明）。"
    ),
    "IMAGE_MODELS": (
        "管理员可以在其服务器中允许的更多模型（/quota models），逗号分隔，例如 "
        "gpt-image-2.5-sunburst,gpt-image-2.6-flare。IMAGE_MODEL 总是其中之一并且是默认模型；"
        "留空 = 只有 IMAGE_MODEL。允许的模型多于一个时，/imagine 和 /edit 会提供 model 选项。"
    ),
    "PARTIAL_IMAGES": "每张图片流式发送的中间帧数（用作实时预览），0-3。0 关闭流式传输。",
    "MODERATION": "生成图片时的内容审核强度：auto（OpenAI 的默认值）或 low。留空 = API 默认值。",
    "OUTPUT_COMPRESSION": "JPEG/WebP 格式随请求发送的压缩级别 0-100。留空 = API 默认值（100）。",
    "API_MAX_RETRIES": (
        "只重试不可能产生费用的失败：从未建立的连接、429 限流、OpenAI 本身的 502/503/504、在第一个事件之前中断的流。"
        "从不重试拒绝、额度用尽或网关的 5xx。"
    ),
    "API_STALL_TIMEOUT": "流式响应多少秒没有任何字节即视为停滞。",
    "API_TIMEOUT": "一次完整的图片请求最多可用的秒数（高质量图片可能需要几分钟）。",
    "PRICE_OVERRIDES": (
        "覆盖内置价格表的价格，单位为每 100 万 token 的美元数，按模型名称组织的 JSON，例如 "
        '{"gpt-image-2": {"text_in": 5, "image_in": 8, "image_out": 30}}'
    ),
    "DEMO_MODE": "true = 使用内置的假图片服务（用 Pillow 绘制的图片）代替 OpenAI：免费试用机器人。",
    "DEMO_GATEWAY": "演示模式下内置假服务模仿的网关：openai、new-api、one-api 或 litellm。",
    "DATABASE_URL": (
        "SQLite 数据库：sqlite:///relative/path.db（相对于工作目录）或 sqlite:////absolute/path.db。Docker 镜像设置为 "
        "sqlite:////data/imagebot.db（/data 卷）。多个进程则共用一个 PostgreSQL 数据库："
        "postgresql://user:password@host:5432/database（见 docs/operations/scaling-out.md）。"
    ),
    "DEFAULT_DAILY_LIMIT": '服务器未作设置时每个用户每天可生成的图片数：一个数字（0 表示禁止）或 "unlimited"。',
    "DEFAULT_MONTHLY_LIMIT": '服务器未作设置时每个用户每月可生成的图片数：一个数字（0 表示禁止）或 "unlimited"。',
    "BOT_USER_DAILY_LIMIT": (
        "一个人在所有服务器和私信中合计每个 UTC 日可生成的图片数（加入更多服务器不会让任何人得到更多）："
        '一个数字（0 表示禁止）或 "unlimited"（有意不设上限）。由服务器自己的密钥支付的图片不计入。'
    ),
    "BOT_MONTHLY_BUDGET_USD": (
        "你的密钥在所有服务器合计每个 UTC 月可花费的美元数（任务运行期间按估算计）；"
        "用完后，使用你的密钥的服务器会被拒绝，"
        '直到下个月。"unlimited"：不设上限。服务器自己的密钥不计入。'
    ),
    "ALLOWED_GUILD_IDS": (
        "即使应用是公开的，也使用你的 API 密钥的服务器（逗号分隔的 ID）；"
        "所有者可在运行时用 /operator approve 批准更多。"
    ),
    "OPERATOR_KEY_SERVERS": (
        "哪些服务器使用你的 API 密钥。auto：应用为私有时（开发者门户 → Bot → Public Bot 关闭）它所在的每个服务器；"
        "为公开时只有 ALLOWED_GUILD_IDS 和已批准的服务器。approved：只有这些，无论开关如何。"
        "none：谁都不用，每个服务器自带密钥。"
    ),
    "SERVER_KEY_SECRET": (
        "加密服务器自带 API 密钥（/apikey set）的机密。生成方法：python -c "
        '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"。请妥善保存：'
        "没有它，已存储的密钥将无法读取。留空：服务器不能存储密钥。"
    ),
    "ALLOW_PRIVATE_BASE_URLS": (
        "true = 服务器自己的密钥可以使用 http:// 基础 URL 或私有网络地址（你自己网络中的网关）。关闭时只允许公网上的 "
        "https://，防止有人把机器人指向你的内部网络。"
    ),
    "MAX_CONCURRENT_IMAGES": "同时运行的图片流数量（其余的在公平队列中等待，在用户之间轮转）。",
    "MAX_QUEUE_PER_USER": "一个用户同时可以排队或运行的任务数。",
    "PREVIEW_MIN_INTERVAL": "同一条消息两次预览编辑之间的最小秒数（让机器人保持在 Discord 的限制之内）。",
    "STATUS_GRACE": "“正在生成”状态等待的秒数，以便与第一帧一起发出。",
    "PREVIEW_MAX_SIDE": "图片流式生成期间显示的预览 JPEG 的最长边（像素）。",
    "EDIT_CACHE_MB": (
        "为最近的修改保留已准备好的输入所用的内存预算（MB），这样重新生成无需再次下载"
        "（最久未用的先丢弃；0 = 不保留）。默认值适合 512 MB 的容器。"
    ),
    "MAX_INPUT_MB": "修改图片时接受的最大附件，单位 MB（下载前检查）。",
    "MAX_INPUT_SIDE": "输入图片在上传前缩小到这个最长边。",
    "MAX_INPUT_PIXELS": "像素数超过此值的图片会被拒绝（防解压炸弹）。",
    "SYNC_COMMANDS": "启动时同步斜杠命令：auto（仅当定义自上次同步后有变化）、always、never。",
    "DEV_GUILD_ID": "只同步到这一个服务器而不是全局同步，开发时可即时更新。",
    "DISCORD_API_BASE": "覆盖 Discord REST API 的基础地址，用于 REST 代理（以及测试套件的假 Discord）。通常留空。",
    "DISCORD_GATEWAY_URL": "覆盖 Discord 网关 URL，用于网关代理（以及测试套件的假 Discord）。通常留空。",
    "LOG_LEVEL": "debug、info、warning 或 error。机密从不写入日志。",
    "LOG_FORMAT": "日志格式：text（每个事件一行可读文字）或 json（每行一个 JSON 对象）。",
    "USER_HASH_SECRET": (
        "把 Discord ID 转换为发送给 Images API 的 `user` 所用的 HMAC 密钥。留空：由 DISCORD_TOKEN 派生"
        "（更换令牌会让每个人得到新的 ID）；设为一个很长的随机值，可在更换令牌后保持 ID 不变。"
    ),
    "LOG_PROMPTS": "true = 在 info 级别的任务日志中包含提示词（默认关闭：提示词可能是私密的）。",
    "SHUTDOWN_GRACE": (
        "收到 SIGTERM/SIGINT 后，运行中的任务在被取消并退款之前可以完成的秒数。默认值适合 Docker 的 10 秒停止超时；"
        "两者要一起调大（docker run --stop-timeout、stop_grace_period）。"
    ),
    "HEALTH_ADDRESS": (
        "/healthz 和 /metrics HTTP 端点的 host:port（例如 127.0.0.1:8080）。留空 = 关闭。"
        "设置后 Docker 健康检查使用它，否则检查数据库。"
    ),
    "PROMPT_RETENTION_DAYS": (
        "数据库保存人们输入的内容（提示词）及其输入图片地址的天数；超过后每小时从任务记录中抹去一次，金额数字保留。"
        "0 = 永久保存。"
    ),
    "SHARD_COUNT": "所有进程合计的分片总数。留空 = 单进程，使用 Discord 推荐的分片数。",
    "SHARD_IDS": "本进程服务的分片（例如 0-3）。留空 = SHARD_COUNT 的全部分片。",
    "INSTANCE_LEASE_SECONDS": (
        "进程在数据库中的租约持续的秒数（每过三分之一续期一次）。进程死亡后，经过这么长时间，它的任务会被退款、"
        "图片槽位会被释放。除非清楚原因，否则不要改动。"
    ),
}
