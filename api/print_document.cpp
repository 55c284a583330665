#include "api/print_document.h"

#include <algorithm>
#include <map>

#include "api/ticket_view.h"
#include "domain/permissions.h"
#include "domain/ticket_notes.h"
#include "domain/time_format.h"

namespace ticketd::api {
namespace {

namespace et = event_types;

std::string person(const Catalog& catalog, const std::string& id) {
  if (id == kSystemActor) return "系统";
  if (id == kPortalActor) return "客户";
  const User* u = catalog.user(id);
  return u && !u->name.empty() ? u->name + " (" + id + ")" : id;
}

std::string number_text(double d) {
  JsonWriter w;
  w.number(d);
  return w.take();
}

std::string stars(int score) {
  std::string out;
  for (int i = 1; i <= 5; ++i) out += i <= score ? "★" : "☆";
  return out + " " + std::to_string(score) + "/5";
}

constexpr size_t kMaxProcessRows = 1000;

class Composer {
 public:
  Composer(const std::vector<PrintedEvent>& events, const Catalog& catalog,
           const PrintTemplateDef& layout, const Actor& reader, const AttachmentNames& uploaded_as)
      : uploaded_as_(uploaded_as),
        events_(events),
        catalog_(catalog),
        layout_(layout),
        reader_(reader),
        zone_(zone_or_company(layout.zone, catalog.settings())),
        zone_name_(zone_name_or_company(layout.zone, layout.time_zone, catalog.settings())) {}

  PrintDocument compose(int64_t now_us) {
    // The ticket as it is now decides what the reader may see; the record is then told event by
    // event, each with the ticket just before it.
    TicketState t;
    for (const PrintedEvent& pe : events_) {
      const DomainEvent& e = pe.event;
      if (e.type == et::kAttachmentAdded)
        filenames_[e.data.string_or("attachment")] = e.data.string_or("filename");
      if (e.type == et::kRated) rating_comment_ = e.data.string_or("comment");
      evolve_in_place(t, e);
    }
    form_ = catalog_.form(t.form_id, t.form_version);
    flow_ = catalog_.flow(t.flow_id, t.flow_version);
    readable_ = readable_keys(t);
    TicketState before;
    for (const PrintedEvent& pe : events_) {
      process_row(before, pe.event);
      evolve_in_place(before, pe.event);
    }
    // Paper has limits a log has not (a ticket with ten thousand comments would print hundreds
    // of pages, and hold up the printer): the start and the end of a long record, and how much of
    // the middle is left out.
    if (process_.size() > kMaxProcessRows) {
      const size_t keep = kMaxProcessRows / 2;
      const size_t left_out = process_.size() - 2 * keep;
      process_.erase(process_.begin() + keep, process_.end() - keep);
      process_.insert(process_.begin() + keep, {"", "", "",
                                                "… 中间 " + std::to_string(left_out) +
                                                    " 条记录未打印(完整记录见工单的事件历史)"});
    }

    PrintDocument doc;
    doc.issuer = catalog_.settings().name;
    doc.title = layout_.title;
    doc.header = {{"工单编号", t.id},
                  {"状态", t.closed ? "已关闭" : "处理中"},
                  {"当前节点", node_name(t.node)},
                  {"提交人", who(t.creator)},
                  {"提交时间", local_time(t.created_at)}};
    if (t.closed) doc.header.emplace_back("关闭时间", local_time(t.closed_at));
    for (const PrintSection& s : layout_.sections) doc.sections.push_back(section(s, t));
    const PrintedEvent* last = events_.empty() ? nullptr : &events_.back();
    // Which state of the log this paper shows: the last event's position and (the start of) its
    // hash, which GET /tickets/{id}/events and the audit trail can be checked against.
    doc.footer = t.id + " · 事件 #" + std::to_string(last ? last->position : 0) + " · 哈希 " +
                 (last ? last->hash_hex.substr(0, 16) : "") + " · " + person(catalog_, reader_.id) +
                 " 打印于 " + local_time(now_us) + " · 时区 " + zone_name_;
    return doc;
  }

 private:
  // The keys `reader_` may read now, set or not: readable_fields() over every field of the form.
  std::vector<std::string> readable_keys(const TicketState& t) const {
    if (!form_ || !flow_) return {};
    TicketState all = t;
    for (const FieldDef& f : form_->fields) {
      if (t.field(f.key).is_null()) set_member(all.fields, f.key, Value());
    }
    std::vector<std::string> keys;
    for (const auto& [k, v] : readable_fields(all, *flow_, reader_)) keys.push_back(k);
    return keys;
  }

  bool readable(const std::string& key) const {
    return std::find(readable_.begin(), readable_.end(), key) != readable_.end();
  }

  std::string node_name(const std::string& id) const {
    const NodeDef* n = flow_ ? flow_->node(id) : nullptr;
    return n ? n->name : id;
  }

  std::string label(const std::string& key) const {
    const FieldDef* f = form_ ? form_->field(key) : nullptr;
    return f && !f->label.empty() ? f->label : key;
  }

  std::string display(const FieldDef* f, const Value& v) const {
    if (v.is_null()) return "";
    if (v.is_array()) {
      std::string out;
      for (const Value& item : v.as_array()) {
        std::string one = display(f, item);
        if (one.empty()) continue;
        out += (out.empty() ? "" : "、") + one;
      }
      return out;
    }
    if (v.is_bool()) return v.as_bool() ? "是" : "否";
    if (v.is_number()) {
      if (f && f->type == FieldType::kRating) return stars(static_cast<int>(v.as_number()));
      return number_text(v.as_number());
    }
    if (!v.is_string()) return v.to_json();
    const std::string& s = v.as_string();
    if (!f) return s;
    switch (f->type) {
      case FieldType::kPerson:
        return who(s);
      case FieldType::kAttachment:
      case FieldType::kImage: {
        auto it = filenames_.find(s);
        std::string name = it != filenames_.end() ? it->second : "";
        if (name.empty() && uploaded_as_) name = uploaded_as_(s);
        return name.empty() ? s : name;
      }
      case FieldType::kDatetime:
        if (auto t = parse_rfc3339(s)) return local_time(*t);
        return s;
      default:
        return s;
    }
  }

  // An image field's pictures (one, or a list), for the page to show what the customer or the
  // engineer photographed; a document shows at most kMaxPictures, the rest by name only.
  void add_pictures(const FieldDef& f, const Value& v, std::vector<PrintDocument::Picture>& out) {
    constexpr size_t kMaxPictures = 12;
    std::vector<const Value*> items;
    if (v.is_array()) {
      for (const Value& item : v.as_array()) items.push_back(&item);
    } else {
      items.push_back(&v);
    }
    for (const Value* item : items) {
      if (!item->is_string() || item->as_string().empty() || pictures_ >= kMaxPictures) continue;
      ++pictures_;
      out.push_back({label(f.key) + ":" + display(&f, *item), item->as_string(), ""});
    }
  }

  PrintDocument::Section section(const PrintSection& s, const TicketState& t) {
    PrintDocument::Section out;
    out.kind = s.kind;
    out.title = s.title;
    switch (s.kind) {
      case PrintSection::Kind::kFields: {
        std::vector<std::string> keys = s.fields;
        if (keys.empty() && form_) {
          for (const FieldDef& f : form_->fields) keys.push_back(f.key);
        }
        for (const auto& key : keys) {
          // A field the ticket's form version lacks, or the reader may not read, is left out.
          const FieldDef* f = form_ ? form_->field(key) : nullptr;
          if (!f || !readable(key)) continue;
          out.rows.emplace_back(label(key), display(f, t.field(key)));
          if (f->type == FieldType::kImage) add_pictures(*f, t.field(key), out.pictures);
        }
        break;
      }
      case PrintSection::Kind::kProcess:
        out.process = process_;
        break;
      case PrintSection::Kind::kRating:
        if (t.rating) {
          out.rows.emplace_back("评分", stars(*t.rating));
          out.rows.emplace_back("评价时间", local_time(t.rated_at));
          if (!rating_comment_.empty()) out.rows.emplace_back("评价内容", rating_comment_);
        } else {
          out.rows.emplace_back("评分", "尚未评价");
        }
        break;
      case PrintSection::Kind::kSignatures:
        out.labels = s.labels;
        break;
    }
    return out;
  }

  // One line of 处理记录 for an event, given the ticket just before it. Bookkeeping events
  // (timers, notifications, SLA figures) are not part of the service's story and are left out.
  //
  // Printed for the customer (the portal), the record keeps only the words the customer reads
  // (domain/ticket_notes.h): what the staff wrote among themselves is left out, and people
  // appear by name alone.
  void process_row(const TicketState& before, const DomainEvent& e) {
    const Value& d = e.data;
    const std::optional<TicketNote> note = note_of(e);
    const bool shown = note && (!reader_.portal_customer || note->customer_reads());
    std::string what;
    std::string node = before.node;
    std::string comment = shown && e.type != et::kCommentAdded ? note->text : "";
    if (e.type == et::kTicketSubmitted) {
      node = flow_ ? flow_->start().id : "";
      what = "提交工单";
    } else if (e.type == et::kNodeEntered) {
      node = d.string_or("node");
      what = "流转至「" + node_name(node) + "」";
    } else if (e.type == et::kApproved) {
      what = "通过";
    } else if (e.type == et::kRejected) {
      what = "驳回";
    } else if (e.type == et::kTransferred) {
      what = "转派给 " + who(d.string_or("to"));
    } else if (e.type == et::kFilled) {
      what = "提交处理结果";
    } else if (e.type == et::kCustomerConfirmed) {
      what = "客户确认";
    } else if (e.type == et::kCommentAdded) {
      if (!shown) return;
      what = (note->kind == TicketNote::Kind::kReply ? "回复: " : "备注: ") + note->text;
    } else if (e.type == et::kAttachmentAdded) {
      what = "上传附件 " + d.string_or("filename");
    } else if (e.type == et::kRated) {
      what = "评价 " + stars(static_cast<int>(d["score"].as_number()));
    } else if (e.type == et::kFieldsChanged) {
      std::string labels;
      for (const auto& [k, v] : d["fields"].as_object()) {
        if (!readable(k)) continue;  // a field the reader may not read is not named either
        labels += (labels.empty() ? "" : "、") + label(k);
      }
      if (labels.empty()) return;  // nothing the reader may see changed
      std::string rule = d.string_or("rule");
      const RuleDef* r = rule.empty() ? nullptr : catalog_.rule(rule);
      what = (rule.empty() ? "修改 " : "规则「" + (r ? r->name : rule) + "」设置 ") + labels;
    } else if (e.type == et::kFlowEnded) {
      what = "流程结束";
    } else if (e.type == et::kTicketClosed) {
      what = "工单关闭";
    } else if (e.type == et::kTicketReopened) {
      what = d.string_or("by") == "customer" ? "客户重新打开工单" : "重新打开工单";
    } else if (e.type == et::kSlaBreached) {
      what = "超出服务时限 (" + d.string_or("limit") + ")";
    } else {
      return;
    }
    if (!comment.empty()) what += " — “" + comment + "”";
    process_.push_back({local_time(e.at_us), node_name(node), who(e.actor), std::move(what)});
  }

  // "2026-11-30 17:05" in the template's zone, else the company's.
  std::string local_time(int64_t us) const { return us > 0 ? format_local_minute(us, zone_) : ""; }

  std::string who(const std::string& id) const {
    if (!reader_.portal_customer || id == kSystemActor || id == kPortalActor) {
      return person(catalog_, id);
    }
    return name_for_customer(catalog_, id);
  }

  const AttachmentNames& uploaded_as_;
  const std::vector<PrintedEvent>& events_;
  const Catalog& catalog_;
  const PrintTemplateDef& layout_;
  const Actor& reader_;
  const date::time_zone* zone_;
  std::string zone_name_;
  const FormDef* form_ = nullptr;
  const FlowDef* flow_ = nullptr;
  std::vector<std::string> readable_;
  std::map<std::string, std::string> filenames_;
  size_t pictures_ = 0;  // named so far, in every section
  std::string rating_comment_;
  std::vector<PrintDocument::ProcessRow> process_;
};

}  // namespace

PrintDocument compose_print(const std::vector<PrintedEvent>& events, const Catalog& catalog,
                            const PrintTemplateDef& layout, const Actor& reader, int64_t now_us,
                            const AttachmentNames& uploaded_as) {
  return Composer(events, catalog, layout, reader, uploaded_as).compose(now_us);
}

}  // namespace ticketd::api
